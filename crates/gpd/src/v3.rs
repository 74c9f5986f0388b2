//! GPD v3 (`gpd_v3.json`): the same positions as v1, told GPD v3's way. A
//! v3 position has payment options, each with its debtor, dates and
//! installments: one installment is a single solution, several are an
//! installment plan. On the positions v1 keeps, a v3 option with one
//! installment is a v1 option with `isPartialPayment: false`, and the
//! installments of a plan are the v1 options with `isPartialPayment: true`.
//! So a position written through either version reads the same through the
//! other.
//!
//! What v3 says and incasso's positions cannot keep is refused, not
//! dropped: options of one position with different debtors, validity dates
//! or `switchToExpired` (400 `V3_OPTIONS_DIFFER`), and more than one
//! installment plan (400 `V3_MULTIPLE_PLANS`, as GPD's first v3 did). The
//! option's own `description` is write-only in v3, as in GPD: it is not
//! kept apart from its installments'.

use crate::WireError;
use crate::dates::{Instant, de_instant, de_opt_instant, instant, ser_instant, ser_opt_instant};
use crate::v1::{
    DebtorTypeModel, KeyValue, PageInfo, TransferModel, kind_out, kv_out, nav_in, transfer_in,
    transfer_out,
};
use chrono::{DateTime, Utc};
use incasso_core::Cents;
use incasso_core::position::{
    DebtPosition, Debtor, DebtorType, OptionStatus, PaymentOption, PositionStatus,
};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------- wire models

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DebtorModel {
    #[serde(rename = "type")]
    pub kind: DebtorTypeModel,
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
}

/// v3's metadata entry: the value may be absent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstallmentMetadataModel {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallmentModel {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nav: Option<String>,
    /// Required by gpd_v3.json; incasso's IUV coordinator assigns one when
    /// it is left out, as in v1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iuv: Option<String>,
    pub amount: i64,
    pub description: String,
    #[serde(deserialize_with = "de_instant", serialize_with = "ser_instant")]
    pub due_date: DateTime<Utc>,
    /// Read-only: ignored on input.
    #[serde(default, skip_deserializing)]
    pub fee: i64,
    #[serde(default, skip_deserializing)]
    pub notification_fee: i64,
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
    #[serde(default)]
    pub transfer: Vec<TransferModel>,
    #[serde(default)]
    pub installment_metadata: Vec<InstallmentMetadataModel>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentOptionModelV3 {
    /// Write-only in gpd_v3.json: GPD takes it and never answers it.
    #[serde(default, skip_serializing)]
    pub description: Option<String>,
    #[serde(
        default,
        deserialize_with = "de_opt_instant",
        serialize_with = "ser_opt_instant",
        skip_serializing_if = "Option::is_none"
    )]
    pub validity_date: Option<DateTime<Utc>>,
    #[serde(
        default,
        deserialize_with = "de_opt_instant",
        serialize_with = "ser_opt_instant",
        skip_serializing_if = "Option::is_none"
    )]
    pub retention_date: Option<DateTime<Utc>>,
    pub switch_to_expired: bool,
    pub debtor: DebtorModel,
    pub installments: Vec<InstallmentModel>,
}

/// GPD v3's `PaymentPositionModelV3`: the request of create and update,
/// and the answer of create, update and publish.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPositionModelV3 {
    pub iupd: String,
    #[serde(default = "default_true")]
    pub pay_stand_in: bool,
    pub company_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub office_name: Option<String>,
    #[serde(
        default,
        skip_deserializing,
        serialize_with = "ser_opt_instant",
        skip_serializing_if = "Option::is_none"
    )]
    pub payment_date: Option<DateTime<Utc>>,
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
    pub payment_option: Vec<PaymentOptionModelV3>,
}

fn default_true() -> bool {
    true
}

/// GPD v3's `TransferModelResponse`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferResponse {
    #[serde(flatten)]
    pub transfer: TransferModel,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inserted_date: Option<Instant>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated_date: Option<Instant>,
}

/// GPD v3's `InstallmentModelResponse`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallmentResponse {
    pub nav: String,
    pub iuv: String,
    pub organization_fiscal_code: String,
    pub amount: i64,
    pub description: String,
    pub due_date: Instant,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_date: Option<Instant>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reporting_date: Option<Instant>,
    pub fee: i64,
    pub notification_fee: i64,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated_date: Option<Instant>,
    pub installment_metadata: Vec<InstallmentMetadataModel>,
    pub transfer: Vec<TransferResponse>,
}

/// GPD v3's `PaymentOptionModelResponseV3`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentOptionResponseV3 {
    pub switch_to_expired: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_date: Option<Instant>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inserted_date: Option<Instant>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validity_date: Option<Instant>,
    pub debtor: DebtorModel,
    pub installments: Vec<InstallmentResponse>,
}

/// GPD v3's `PaymentPositionModelResponseV3` (get and list).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPositionResponseV3 {
    pub iupd: String,
    pub organization_fiscal_code: String,
    pub company_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub office_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inserted_date: Option<Instant>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_date: Option<Instant>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_date: Option<Instant>,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated_date: Option<Instant>,
    pub payment_option: Vec<PaymentOptionResponseV3>,
}

#[derive(Debug, Serialize)]
pub struct PaymentPositionsInfoV3 {
    pub payment_position_list: Vec<PaymentPositionResponseV3>,
    pub page_info: PageInfo,
}

// ---------------------------------------------------------------- states

/// A position's state as v3 names it: what cannot be paid any more is
/// UNPAYABLE, and a paid position stays PAID once reported.
fn position_status(s: PositionStatus) -> &'static str {
    match s {
        PositionStatus::Draft => "DRAFT",
        PositionStatus::Published => "PUBLISHED",
        PositionStatus::Valid => "VALID",
        PositionStatus::Invalid | PositionStatus::Expired => "UNPAYABLE",
        PositionStatus::PartiallyPaid => "PARTIALLY_PAID",
        PositionStatus::Paid | PositionStatus::Reported => "PAID",
    }
}

/// The stored states a v3 `status` filter means.
pub fn statuses_of(v3: &str) -> Option<Vec<PositionStatus>> {
    use PositionStatus::*;
    Some(match v3 {
        "DRAFT" => vec![Draft],
        "PUBLISHED" => vec![Published],
        "VALID" => vec![Valid],
        "UNPAYABLE" => vec![Invalid, Expired],
        "PARTIALLY_PAID" => vec![PartiallyPaid],
        "PAID" => vec![Paid, Reported],
        _ => return None,
    })
}

/// An installment's state: the option's without GPD v1's `PO_`.
fn installment_status(s: OptionStatus) -> &'static str {
    match s {
        OptionStatus::Unpaid => "UNPAID",
        OptionStatus::Paid => "PAID",
        OptionStatus::PartiallyReported => "PARTIALLY_REPORTED",
        OptionStatus::Reported => "REPORTED",
    }
}

// ---------------------------------------------------------------- v3 -> positions

fn debtor_in(d: DebtorModel) -> Debtor {
    Debtor {
        kind: match d.kind {
            DebtorTypeModel::F => DebtorType::F,
            DebtorTypeModel::G => DebtorType::G,
        },
        fiscal_code: d.fiscal_code,
        full_name: d.full_name,
        street_name: d.street_name,
        civic_number: d.civic_number,
        postal_code: d.postal_code,
        city: d.city,
        province: d.province,
        region: d.region,
        country: d.country,
        email: d.email,
        phone: d.phone,
    }
}

fn debtor_out(d: &Debtor) -> DebtorModel {
    DebtorModel {
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
    }
}

/// Where each of the position's options came from in the v3 request:
/// (payment option, installment).
pub struct Origins(Vec<(usize, usize)>);

impl Origins {
    /// `text` (an error of core's rules, which names the position's options
    /// as `paymentOption[n]`) with the request's own paths
    /// (`paymentOption[i].installments[j]`).
    pub fn rewrite(&self, text: &str) -> String {
        const NEEDLE: &str = "paymentOption[";
        let mut out = String::with_capacity(text.len() + 16);
        let mut rest = text;
        while let Some(at) = rest.find(NEEDLE) {
            let after = &rest[at + NEEDLE.len()..];
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            let origin = after[..digits]
                .parse::<usize>()
                .ok()
                .filter(|_| after[digits..].starts_with(']'))
                .and_then(|n| self.0.get(n));
            out.push_str(&rest[..at]);
            match origin {
                Some((i, j)) => {
                    out.push_str(&format!("paymentOption[{i}].installments[{j}]"));
                    rest = &after[digits + 1..];
                }
                None => {
                    out.push_str(NEEDLE);
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }
}

impl PaymentPositionModelV3 {
    /// v3 -> the position, and where its options came from. Refuses what
    /// the position cannot keep (see the module's note).
    pub fn into_domain(self) -> Result<(DebtPosition, Origins), WireError> {
        let first = self.payment_option.first().ok_or_else(|| {
            WireError::new(
                "NO_PAYMENT_OPTIONS",
                "paymentOption: serve almeno un'opzione di pagamento",
            )
        })?;
        let (debtor, validity_date, switch_to_expired) = (
            first.debtor.clone(),
            first.validity_date,
            first.switch_to_expired,
        );
        let mut plans = 0;
        for (i, o) in self.payment_option.iter().enumerate() {
            let differs = |what: &str| {
                WireError::new(
                    "V3_OPTIONS_DIFFER",
                    format!(
                        "paymentOption[{i}].{what}: diverso da paymentOption[0]; incasso tiene un solo {what} per posizione (usare posizioni distinte)"
                    ),
                )
            };
            if o.debtor != debtor {
                return Err(differs("debtor"));
            }
            if o.validity_date != validity_date {
                return Err(differs("validityDate"));
            }
            if o.switch_to_expired != switch_to_expired {
                return Err(differs("switchToExpired"));
            }
            if o.installments.is_empty() {
                return Err(WireError::new(
                    "NO_INSTALLMENTS",
                    format!("paymentOption[{i}].installments: serve almeno una rata"),
                ));
            }
            if o.installments.len() > 1 {
                plans += 1;
                if plans > 1 {
                    return Err(WireError::new(
                        "V3_MULTIPLE_PLANS",
                        format!(
                            "paymentOption[{i}]: un solo piano di rateizzazione per posizione (usare posizioni distinte)"
                        ),
                    ));
                }
            }
        }
        let mut options = Vec::new();
        let mut origins = Vec::new();
        for (i, o) in self.payment_option.into_iter().enumerate() {
            let plan = o.installments.len() > 1;
            for (j, inst) in o.installments.into_iter().enumerate() {
                let path = format!("paymentOption[{i}].installments[{j}]");
                let transfers = inst
                    .transfer
                    .into_iter()
                    .enumerate()
                    .map(|(k, t)| transfer_in(&format!("{path}.transfer[{k}]"), t))
                    .collect::<Result<Vec<_>, _>>()?;
                options.push(PaymentOption {
                    iuv: inst.iuv.filter(|s| !s.is_empty()),
                    notice_number: nav_in(&format!("{path}.nav"), inst.nav)?,
                    amount: Cents(inst.amount),
                    description: inst.description,
                    is_partial_payment: plan,
                    due_date: inst.due_date,
                    retention_date: o.retention_date,
                    fee: Cents::ZERO,
                    notification_fee: Cents::ZERO,
                    status: OptionStatus::Unpaid,
                    payment_date: None,
                    reporting_date: None,
                    metadata: inst
                        .installment_metadata
                        .into_iter()
                        .map(|m| (m.key, m.value.unwrap_or_default()))
                        .collect(),
                    transfers,
                });
                origins.push((i, j));
            }
        }
        Ok((
            DebtPosition {
                iupd: self.iupd,
                debtor: debtor_in(debtor),
                company_name: self.company_name,
                office_name: self.office_name,
                validity_date,
                switch_to_expired,
                pay_stand_in: self.pay_stand_in,
                status: PositionStatus::Draft,
                inserted_date: None,
                publish_date: None,
                payment_date: None,
                last_updated_date: None,
                options,
            },
            Origins(origins),
        ))
    }
}

// ---------------------------------------------------------------- positions -> v3

/// The position's options as v3 groups them: each single solution alone,
/// the installments together as one plan; options in order of their first
/// due date, installments by due date (GPD v3's order).
fn groups(p: &DebtPosition) -> Vec<Vec<&PaymentOption>> {
    // Each group with the place of its first option as sent, which breaks
    // ties of due dates: options due the same day keep the order they came in.
    let mut plan: Vec<(usize, &PaymentOption)> = p
        .options
        .iter()
        .enumerate()
        .filter(|(_, o)| o.is_partial_payment)
        .collect();
    let plan_at = plan.first().map(|(i, _)| *i);
    plan.sort_by_key(|(i, o)| (o.due_date, *i));
    let mut out: Vec<(usize, Vec<&PaymentOption>)> = p
        .options
        .iter()
        .enumerate()
        .filter(|(_, o)| !o.is_partial_payment)
        .map(|(i, o)| (i, vec![o]))
        .collect();
    if let Some(at) = plan_at {
        out.push((at, plan.into_iter().map(|(_, o)| o).collect()));
    }
    out.sort_by_key(|(at, g)| (g[0].due_date, *at));
    out.into_iter().map(|(_, g)| g).collect()
}

fn metadata_out(m: &[(String, String)]) -> Vec<InstallmentMetadataModel> {
    kv_out(m)
        .into_iter()
        .map(|KeyValue { key, value }| InstallmentMetadataModel {
            key,
            value: Some(value),
        })
        .collect()
}

impl PaymentPositionModelV3 {
    pub fn from_domain(p: &DebtPosition, now: DateTime<Utc>) -> Self {
        PaymentPositionModelV3 {
            iupd: p.iupd.clone(),
            pay_stand_in: p.pay_stand_in,
            company_name: p.company_name.clone(),
            office_name: p.office_name.clone(),
            payment_date: p.payment_date,
            status: Some(position_status(p.effective_status(now))),
            payment_option: groups(p)
                .into_iter()
                .map(|g| PaymentOptionModelV3 {
                    description: None,
                    validity_date: p.validity_date,
                    retention_date: g[0].retention_date,
                    switch_to_expired: p.switch_to_expired,
                    debtor: debtor_out(&p.debtor),
                    installments: g
                        .into_iter()
                        .map(|o| InstallmentModel {
                            nav: o.notice_number.as_ref().map(|n| n.as_str().to_string()),
                            iuv: o.iuv.clone(),
                            amount: o.amount.0,
                            description: o.description.clone(),
                            due_date: o.due_date,
                            fee: o.fee.0,
                            notification_fee: o.notification_fee.0,
                            status: Some(installment_status(o.status)),
                            transfer: o.transfers.iter().map(transfer_out).collect(),
                            installment_metadata: metadata_out(&o.metadata),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// A stored position as v3's get and list answer it, for Ente `ente`.
pub fn response(ente: &str, p: &DebtPosition, now: DateTime<Utc>) -> PaymentPositionResponseV3 {
    PaymentPositionResponseV3 {
        iupd: p.iupd.clone(),
        organization_fiscal_code: ente.to_string(),
        company_name: p.company_name.clone(),
        office_name: p.office_name.clone(),
        inserted_date: instant(p.inserted_date),
        publish_date: instant(p.publish_date),
        payment_date: instant(p.payment_date),
        status: position_status(p.effective_status(now)),
        last_updated_date: instant(p.last_updated_date),
        payment_option: groups(p)
            .into_iter()
            .map(|g| PaymentOptionResponseV3 {
                switch_to_expired: p.switch_to_expired,
                retention_date: instant(g[0].retention_date),
                inserted_date: instant(p.inserted_date),
                validity_date: instant(p.validity_date),
                debtor: debtor_out(&p.debtor),
                installments: g
                    .into_iter()
                    .map(|o| InstallmentResponse {
                        nav: o
                            .notice_number
                            .as_ref()
                            .map(|n| n.as_str().to_string())
                            .unwrap_or_default(),
                        iuv: o.iuv.clone().unwrap_or_default(),
                        organization_fiscal_code: ente.to_string(),
                        amount: o.amount.0,
                        description: o.description.clone(),
                        due_date: Instant(o.due_date),
                        payment_date: instant(o.payment_date),
                        reporting_date: instant(o.reporting_date),
                        fee: o.fee.0,
                        notification_fee: o.notification_fee.0,
                        status: installment_status(o.status),
                        last_updated_date: instant(p.last_updated_date),
                        installment_metadata: metadata_out(&o.metadata),
                        transfer: o
                            .transfers
                            .iter()
                            .map(|t| TransferResponse {
                                transfer: transfer_out(t),
                                inserted_date: instant(p.inserted_date),
                                last_updated_date: instant(p.last_updated_date),
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_requests_own_paths() {
        let origins = Origins(vec![(0, 0), (1, 0), (1, 1)]);
        assert_eq!(
            origins.rewrite(
                "paymentOption[2].transfer[0].iban: x; paymentOption[0]: y; paymentOption[9]"
            ),
            "paymentOption[1].installments[1].transfer[0].iban: x; paymentOption[0].installments[0]: y; paymentOption[9]"
        );
        assert_eq!(origins.rewrite("paymentOption[ab"), "paymentOption[ab");
    }
}
