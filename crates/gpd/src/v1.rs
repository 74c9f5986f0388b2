//! GPD v1 (`gpd.json`): the JSON of pagoPA's positions API, so a GPD
//! client works against incasso by changing only its base URL and key.
//!
//! incasso extends the model in two compatible ways: `iuv` may be omitted
//! (incasso's IUV coordinator assigns one), and a transfer may carry
//! `accountingQuotas`, its split over accertamenti.

use crate::WireError;
use crate::dates::{Instant, de_instant, de_opt_instant, instant, ser_instant, ser_opt_instant};
use chrono::{DateTime, Utc};
use incasso_core::Cents;
use incasso_core::accertamento::AccertamentoRef;
use incasso_core::codes::NoticeNumber;
use incasso_core::position::{
    AccountingQuota, DebtPosition, Debtor, DebtorType, OptionStatus, PaymentOption, PositionStatus,
    Stamp, Transfer,
};
use serde::{Deserialize, Serialize};

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

/// A page of a list, as GPD numbers it (from 0).
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

pub(crate) fn kv_in(v: Vec<KeyValue>) -> Vec<(String, String)> {
    v.into_iter().map(|kv| (kv.key, kv.value)).collect()
}

pub(crate) fn kv_out(v: &[(String, String)]) -> Vec<KeyValue> {
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
pub(crate) fn transfer_in(path: &str, t: TransferModel) -> Result<Transfer, WireError> {
    let id_transfer: u8 = t.id_transfer.parse().map_err(|_| {
        WireError::new(
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
                WireError::new(
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
pub(crate) fn nav_in(path: &str, nav: Option<String>) -> Result<Option<NoticeNumber>, WireError> {
    match nav.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(nav) => NoticeNumber::parse(&nav)
            .map(|n| Some(n.notice_number))
            .map_err(|e| {
                WireError::new("BAD_IUV", format!("{path}: numero avviso non valido ({e})"))
            }),
    }
}

impl PaymentPositionModel {
    /// Wire -> domain. Only shape errors are found here (an `idTransfer`
    /// that is not a number, a malformed quota reference); the rules are
    /// core's, applied by the store.
    pub fn into_domain(self) -> Result<DebtPosition, WireError> {
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

pub fn kind_out(k: DebtorType) -> DebtorTypeModel {
    match k {
        DebtorType::F => DebtorTypeModel::F,
        DebtorType::G => DebtorTypeModel::G,
    }
}

pub(crate) fn transfer_out(t: &Transfer) -> TransferModel {
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

/// A stored position as v1's get and list answer it, for Ente `ente`.
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

// ---------------------------------------------------------------- other bodies

/// The body of "paid outside pagoPA" (`paymentoptions/paids/{nav}`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlreadyPaidModel {
    #[serde(default, deserialize_with = "de_opt_instant")]
    pub payment_date: Option<DateTime<Utc>>,
}

/// The body of `PATCH debtpositions/transfers`: the IBAN that replaces
/// `oldIban` (a query parameter) on the Ente's transfers.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateIbanModel {
    pub new_iban: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateIbanResponse {
    pub description: String,
    pub updated_transfers: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn body() -> serde_json::Value {
        json!({
            "iupd": "TARI-1",
            "type": "F",
            "fiscalCode": "RSSMRA85T10A562S",
            "fullName": "Mario Rossi",
            "switchToExpired": false,
            "companyName": "Comune di prova",
            "paymentOption": [{
                "nav": "301000000001234519",
                "amount": 10000,
                "description": "TARI 2026",
                "isPartialPayment": false,
                // Zone-less: Italian time (CET until the end of March).
                "dueDate": "2026-03-15T23:59:59",
                "transfer": [{
                    "idTransfer": "1",
                    "amount": 10000,
                    "remittanceInformation": "TARI 2026",
                    "category": "9/0101101IM/",
                    "iban": "",
                    "accountingQuotas": [{"accertamento": "2026/ACC/1", "amount": 10000}]
                }]
            }]
        })
    }

    #[test]
    fn a_body_maps_onto_a_position_and_back() {
        let model: PaymentPositionModel = serde_json::from_value(body()).unwrap();
        let position = model.into_domain().unwrap();
        let option = &position.options[0];
        assert!(position.pay_stand_in, "payStandIn defaults to true");
        assert_eq!(
            option.due_date,
            Utc.with_ymd_and_hms(2026, 3, 15, 22, 59, 59).unwrap()
        );
        let transfer = &option.transfers[0];
        assert_eq!(transfer.iban, None, "an empty IBAN is none");
        assert_eq!(transfer.quotas[0].accertamento.code, "ACC/1");
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let answer = PaymentPositionModel::from_domain(&position, now);
        let written = serde_json::to_value(&answer).unwrap();
        assert_eq!(
            written["paymentOption"][0]["dueDate"],
            "2026-03-15T22:59:59.000Z"
        );
        assert_eq!(written["paymentOption"][0]["status"], "PO_UNPAID");
        assert_eq!(
            written["paymentOption"][0]["transfer"][0]["accountingQuotas"][0]["accertamento"],
            "2026/ACC/1"
        );
        assert_eq!(answer.into_domain().unwrap(), position);
    }

    #[test]
    fn shape_errors_name_the_field() {
        let mut bad = body();
        bad["paymentOption"][0]["transfer"][0]["idTransfer"] = json!("uno");
        let model: PaymentPositionModel = serde_json::from_value(bad).unwrap();
        let e = model.into_domain().unwrap_err();
        assert_eq!(e.code, "BAD_FORMAT");
        assert_eq!(
            e.detail,
            "paymentOption[0].transfer[0].idTransfer: deve essere un numero da 1 a 5"
        );
        let mut bad = body();
        bad["paymentOption"][0]["nav"] = json!("301000000001234518");
        let model: PaymentPositionModel = serde_json::from_value(bad).unwrap();
        let e = model.into_domain().unwrap_err();
        assert_eq!(e.code, "BAD_IUV");
        assert!(e.detail.starts_with("paymentOption[0].nav: "), "{e}");
        let bad = json!({ "paymentPositions": [body(), {
            "iupd": "X", "type": "G", "fiscalCode": "x", "fullName": "x",
            "switchToExpired": false, "companyName": "x",
            "paymentOption": [{ "amount": 1, "description": "x", "isPartialPayment": false,
                "dueDate": "2026-03-31T23:59:59Z",
                "transfer": [{ "idTransfer": "1", "amount": 1, "remittanceInformation": "x",
                    "category": "x", "accountingQuotas": [{"accertamento": "ACC-1", "amount": 1}] }] }]
        }]});
        let e = crate::v2::positions_of(serde_json::from_value(bad).unwrap()).unwrap_err();
        assert_eq!(
            e.detail,
            "paymentPositions[1] (iupd 'X'): paymentOption[0].transfer[0].accountingQuotas[0].accertamento: atteso 'anno/codice'"
        );
    }
}
