//! A position entered by hand in the back office (*inserimento singolo*):
//! a debtor, one payment (optionally in monthly installments), the Ente's
//! transfer with its accertamenti quotas and optionally another Ente's
//! share, a service and an office of the catalogue. The same form updates
//! it while nothing is paid.
//!
//! Errors name the entry's own fields ([`ENTRY_FIELDS`]), never GPD's
//! paths, so that the form can put each message next to its input.

use super::{check_iupd, office_scope, scoped, sees_office};
use crate::Ctx;
use crate::error::{AppError, At, Kind, Place};
use chrono::{Months, NaiveDate};
use incasso_core::accertamento::{Accertamento, AccertamentoRef};
use incasso_core::catalogue::Service;
use incasso_core::ente::Office;
use incasso_core::position::{
    AccountingQuota, DebtPosition, Debtor, OptionStatus, PaymentOption, Transfer,
};
use incasso_core::{Cents, FieldError};
use incasso_store::{Placement, StoredPosition};

/// The most installments the form makes.
pub const MAX_INSTALLMENTS: u32 = 24;

/// Another Ente's share of the payment (a second beneficiary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beneficiary {
    pub fiscal_code: String,
    pub name: Option<String>,
    pub iban: String,
    pub amount: Cents,
}

/// A position as a clerk enters it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Empty: incasso makes one.
    pub iupd: Option<String>,
    pub service: String,
    /// `None`: the service's office.
    pub office: Option<String>,
    pub debtor: Debtor,
    /// What the payment is for (the notice's subject).
    pub description: String,
    /// The whole amount.
    pub amount: Cents,
    /// The day it is due (in Italy; due until its end).
    pub due_date: NaiveDate,
    /// 0: a single payment; 2 or more: also payable in this many monthly
    /// installments, the first on the due date.
    pub installments: u32,
    /// The account of the Ente's transfer; `None`: the service's, else the
    /// Ente's.
    pub iban: Option<String>,
    pub second: Option<Beneficiary>,
    /// How the Ente's share is booked: amounts that add up to it. Empty:
    /// all to the service's default accertamento.
    pub quotas: Vec<(AccertamentoRef, Cents)>,
    /// Publish at once (else a draft).
    pub publish: bool,
}

/// The entry's fields, as its errors name them.
pub const ENTRY_FIELDS: &[&str] = &[
    "iupd",
    "service",
    "office",
    "debtor.kind",
    "debtor.fiscal_code",
    "debtor.name",
    "debtor.street",
    "debtor.civic",
    "debtor.postal_code",
    "debtor.city",
    "debtor.province",
    "debtor.country",
    "debtor.email",
    "debtor.phone",
    "description",
    "amount",
    "due_date",
    "installments",
    "iban",
    "second.fiscal_code",
    "second.name",
    "second.iban",
    "second.amount",
    "quotas",
];

/// What the entry form offers to choose from.
#[derive(Debug, Clone)]
pub struct Choices {
    pub ente_name: String,
    pub ente_iban: Option<String>,
    /// Active services the caller may enter positions for.
    pub services: Vec<Service>,
    /// Offices the caller may enter positions in.
    pub offices: Vec<Office>,
    /// Active accertamenti, newest year first.
    pub accertamenti: Vec<Accertamento>,
}

/// The catalogue as the entry form offers it to the caller: an office
/// operator sees their offices and the services of those offices (or of
/// none).
pub async fn entry_choices(ctx: &Ctx, ente: &str) -> Result<Choices, AppError> {
    ctx.caller.require(
        ente,
        incasso_core::access::Area::Positions,
        incasso_core::access::Access::Write,
    )?;
    let at = Place::new("positions.entry_choices", ente, "");
    let e = ctx.store().get_ente(ente).await.at(at)?;
    let scope = office_scope(ctx);
    let offices: Vec<Office> = ctx
        .store()
        .list_offices(ente)
        .await
        .at(at)?
        .into_iter()
        .filter(|o| scope.as_ref().is_none_or(|s| s.contains(&o.code)))
        .collect();
    let services = ctx
        .store()
        .list_services(ente)
        .await
        .at(at)?
        .into_iter()
        .filter(|s| s.active)
        .filter(|s| match (&scope, &s.office_code) {
            (None, _) | (Some(_), None) => true,
            (Some(mine), Some(o)) => mine.contains(o),
        })
        .collect();
    let mut accertamenti: Vec<Accertamento> = ctx
        .store()
        .list_accertamenti(ente, None)
        .await
        .at(at)?
        .into_iter()
        .filter(|a| a.active)
        .collect();
    accertamenti.sort_by(|a, b| b.year.cmp(&a.year).then_with(|| a.code.cmp(&b.code)));
    Ok(Choices {
        ente_name: e.name,
        ente_iban: e.iban,
        services,
        offices,
        accertamenti,
    })
}

fn field(field: &str, code: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        code,
        message: message.into(),
    }
}

fn invalid(errors: Vec<FieldError>) -> AppError {
    let mut e = AppError::invalid(
        errors.first().map_or("INVALID", |f| f.code),
        "la posizione non è valida",
    );
    e.errors = errors;
    e
}

/// The entry's field of a GPD path of the position it made.
fn entry_field(path: &str) -> &'static str {
    let tail = path.rsplit('.').next().unwrap_or(path);
    let second = path.contains("transfer[1]");
    match tail {
        "iupd" => "iupd",
        "fiscalCode" => "debtor.fiscal_code",
        "fullName" => "debtor.name",
        "streetName" => "debtor.street",
        "civicNumber" => "debtor.civic",
        "postalCode" => "debtor.postal_code",
        "city" => "debtor.city",
        "province" => "debtor.province",
        "region" => "debtor.province",
        "country" => "debtor.country",
        "email" => "debtor.email",
        "phone" => "debtor.phone",
        "description" | "remittanceInformation" => "description",
        "dueDate" => "due_date",
        "iban" | "postalIban" if second => "second.iban",
        "iban" | "postalIban" => "iban",
        "organizationFiscalCode" if second => "second.fiscal_code",
        "companyName" if second => "second.name",
        "amount" if second => "second.amount",
        "category" => "service",
        "service" => "service",
        "office" => "office",
        _ if path.contains("accountingQuotas") => "quotas",
        _ => "amount",
    }
}

/// An error of the position made from an entry, told in the entry's
/// fields (each field once: the first option's message stands for the
/// installments').
fn in_entry_fields(mut e: AppError) -> AppError {
    if e.kind != Kind::Invalid {
        return e;
    }
    let mut seen = std::collections::BTreeSet::new();
    e.errors = e
        .errors
        .into_iter()
        .map(|f| FieldError {
            field: entry_field(&f.field).to_string(),
            ..f
        })
        .filter(|f| seen.insert(f.field.clone()))
        .collect();
    e
}

/// `total` split as `weights` are, to the cent (largest remainders), so
/// that the parts add up to it exactly.
fn split(total: i64, weights: &[i64]) -> Vec<i64> {
    let sum: i64 = weights.iter().sum();
    if sum <= 0 {
        return weights.iter().map(|_| 0).collect();
    }
    let exact: Vec<(i64, i64)> = weights
        .iter()
        .map(|w| {
            let p = i128::from(total) * i128::from(*w);
            ((p / i128::from(sum)) as i64, (p % i128::from(sum)) as i64)
        })
        .collect();
    let mut parts: Vec<i64> = exact.iter().map(|(q, _)| *q).collect();
    let mut left = total - parts.iter().sum::<i64>();
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|a, b| exact[*b].1.cmp(&exact[*a].1).then(a.cmp(b)));
    for i in order {
        if left <= 0 {
            break;
        }
        parts[i] += 1;
        left -= 1;
    }
    parts
}

/// The end of a day in Italy.
fn end_of(day: NaiveDate) -> chrono::DateTime<chrono::Utc> {
    incasso_core::time::from_rome(day.and_hms_opt(23, 59, 59).unwrap_or_default())
}

/// What an entry is made into a position with.
struct Making<'a> {
    iupd: String,
    ente: &'a incasso_core::ente::Ente,
    service: &'a Service,
    office: Option<&'a Office>,
    /// Kept by the options in order: an update keeps the notices a debtor
    /// may hold on paper.
    iuvs: &'a [String],
}

impl Entry {
    /// The position this entry makes for the Ente, with the service's
    /// taxonomy and accounts.
    fn position(&self, m: Making<'_>) -> Result<DebtPosition, AppError> {
        let Making {
            iupd,
            ente: e,
            service,
            office,
            iuvs,
        } = m;
        let (ente, ente_name, ente_iban) =
            (e.fiscal_code.as_str(), e.name.as_str(), e.iban.as_deref());
        let mut errors = Vec::new();
        if self.installments == 1 || self.installments > MAX_INSTALLMENTS {
            errors.push(field(
                "installments",
                "OUT_OF_RANGE",
                format!("da 2 a {MAX_INSTALLMENTS} rate, oppure nessuna"),
            ));
        }
        let second = self.second.as_ref().map_or(0, |b| b.amount.0);
        if second < 0 || (self.second.is_some() && second >= self.amount.0) {
            errors.push(field(
                "second.amount",
                "OUT_OF_RANGE",
                "la quota dell'altro ente deve essere maggiore di zero e minore dell'importo",
            ));
        }
        if self.second.as_ref().is_some_and(|b| b.fiscal_code == ente) {
            errors.push(field(
                "second.fiscal_code",
                "BAD_FISCAL_CODE",
                "l'altro beneficiario non può essere l'ente stesso",
            ));
        }
        if !errors.is_empty() {
            return Err(invalid(errors));
        }
        let iban = self
            .iban
            .clone()
            .or_else(|| service.iban.clone())
            .or_else(|| ente_iban.map(str::to_string));
        let n = i64::from(self.installments);
        // (amount, due day, is an installment, description)
        let mut plan = vec![(
            self.amount.0,
            self.due_date,
            false,
            self.description.clone(),
        )];
        if n >= 2 {
            let parts = split(self.amount.0, &vec![1; n as usize]);
            for (k, part) in parts.into_iter().enumerate() {
                let due = self
                    .due_date
                    .checked_add_months(Months::new(k as u32))
                    .unwrap_or(self.due_date);
                plan.push((
                    part,
                    due,
                    true,
                    format!("{} - rata {} di {n}", self.description, k + 1),
                ));
            }
        }
        let own_total = self.amount.0 - second;
        let quota_weights: Vec<i64> = self.quotas.iter().map(|(_, c)| c.0).collect();
        let options = plan
            .into_iter()
            .enumerate()
            .map(|(i, (amount, due, partial, description))| {
                let share = split(amount, &[own_total, second]);
                let (own, other) = (share[0], share[1]);
                // The first option's quotas are as typed (so that a wrong
                // sum is told as typed); the installments' are scaled.
                let quotas: Vec<AccountingQuota> = if i == 0 {
                    self.quotas
                        .iter()
                        .map(|(a, c)| AccountingQuota {
                            accertamento: a.clone(),
                            amount: *c,
                        })
                        .collect()
                } else {
                    self.quotas
                        .iter()
                        .zip(split(own, &quota_weights))
                        .map(|((a, _), c)| AccountingQuota {
                            accertamento: a.clone(),
                            amount: Cents(c),
                        })
                        .collect()
                };
                let mut transfers = vec![Transfer {
                    id_transfer: 1,
                    amount: Cents(own),
                    organization_fiscal_code: ente.to_string(),
                    company_name: None,
                    remittance_information: description.clone(),
                    category: service.taxonomy_code.clone(),
                    iban: iban.clone(),
                    postal_iban: None,
                    stamp: None,
                    metadata: Vec::new(),
                    quotas,
                    reported: false,
                }];
                if let Some(b) = &self.second {
                    transfers.push(Transfer {
                        id_transfer: 2,
                        amount: Cents(other),
                        organization_fiscal_code: b.fiscal_code.clone(),
                        company_name: b.name.clone(),
                        remittance_information: description.clone(),
                        category: service.taxonomy_code.clone(),
                        iban: Some(b.iban.clone()),
                        postal_iban: None,
                        stamp: None,
                        metadata: Vec::new(),
                        quotas: Vec::new(),
                        reported: false,
                    });
                }
                PaymentOption {
                    iuv: iuvs.get(i).cloned(),
                    notice_number: None,
                    amount: Cents(amount),
                    description,
                    is_partial_payment: partial,
                    due_date: end_of(due),
                    retention_date: None,
                    fee: Cents::ZERO,
                    notification_fee: Cents::ZERO,
                    status: OptionStatus::Unpaid,
                    payment_date: None,
                    reporting_date: None,
                    metadata: Vec::new(),
                    transfers,
                }
            })
            .collect();
        Ok(DebtPosition {
            office_name: office.map(|o| o.name.clone()),
            ..DebtPosition::draft(iupd, self.debtor.clone(), ente_name.to_string(), options)
        })
    }
}

/// A new iupd for a position entered by hand: `BO-` (back office), the
/// day and random hex, unique enough that a clash (refused by the store)
/// never happens in practice.
fn new_iupd(ctx: &Ctx) -> String {
    let mut b = [0u8; 5];
    let _ = getrandom::fill(&mut b);
    format!(
        "BO-{}-{}",
        incasso_core::time::to_rome(ctx.now()).format("%Y%m%d"),
        crate::keys::hex(&b).to_uppercase()
    )
}

/// The service and office an entry names, checked against the catalogue
/// and the caller's offices.
async fn place(
    ctx: &Ctx,
    ente: &str,
    entry: &Entry,
) -> Result<(Service, Option<Office>), AppError> {
    let at = Place::new("positions.entry", ente, "");
    let service = match ctx.store().get_service(ente, entry.service.trim()).await {
        Ok(s) if s.active => s,
        Ok(_) => {
            return Err(invalid(vec![field(
                "service",
                "INACTIVE",
                "il servizio non è attivo",
            )]));
        }
        Err(incasso_store::StoreError::NotFound(_)) => {
            return Err(invalid(vec![field(
                "service",
                "REQUIRED",
                "scegliere un servizio del catalogo",
            )]));
        }
        Err(e) => return Err(crate::error::from_store(e, &at)),
    };
    let code = entry
        .office
        .clone()
        .filter(|o| !o.trim().is_empty())
        .or_else(|| service.office_code.clone());
    let office = match code {
        None => None,
        Some(code) => Some(
            ctx.store()
                .list_offices(ente)
                .await
                .at(at)?
                .into_iter()
                .find(|o| o.code == code)
                .ok_or_else(|| {
                    invalid(vec![field(
                        "office",
                        "REQUIRED",
                        "scegliere un ufficio dell'ente",
                    )])
                })?,
        ),
    };
    if !sees_office(ctx, office.as_ref().map(|o| o.code.as_str())) {
        return Err(invalid(vec![field(
            "office",
            "FORBIDDEN_SCOPE",
            "scegliere uno dei propri uffici",
        )]));
    }
    Ok((service, office))
}

/// Creates the position a clerk entered (published when asked).
pub async fn enter(ctx: &Ctx, ente: &str, entry: Entry) -> Result<StoredPosition, AppError> {
    let iupd = entry
        .iupd
        .as_deref()
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| new_iupd(ctx));
    crate::audit::audited(ctx, Some(ente), "position.create", &iupd, async {
        ctx.caller.require(
            ente,
            incasso_core::access::Area::Positions,
            incasso_core::access::Access::Write,
        )?;
        check_iupd("iupd", &iupd).map_err(|e| {
            invalid(vec![field(
                "iupd",
                "BAD_FORMAT",
                e.detail.replacen("iupd: ", "", 1),
            )])
        })?;
        let at = Place::new("positions.enter", ente, &iupd);
        let (service, office) = place(ctx, ente, &entry).await?;
        let e = ctx.store().get_ente(ente).await.at(at)?;
        let position = entry.position(Making {
            iupd: iupd.clone(),
            ente: &e,
            service: &service,
            office: office.as_ref(),
            iuvs: &[],
        })?;
        let placement = Placement {
            service: Some(service.code.clone()),
            office: office.map(|o| o.code),
        };
        match ctx
            .store()
            .create_position_placed(ente, position, Some(placement), ctx.now(), entry.publish)
            .await
        {
            // The iupd is the entry's own field: its clash is told there.
            Err(incasso_store::StoreError::Conflict(m)) => {
                Err(invalid(vec![field("iupd", "CONFLICT", m)]))
            }
            other => {
                let stored = other.at(at).map_err(in_entry_fields)?;
                // The clerk prints its notice at once (`Store::durable`).
                ctx.store().durable().await.at(at)?;
                Ok(stored)
            }
        }
    })
    .await
}

/// Replaces position `iupd` with what a clerk entered, while nothing is
/// paid; its options keep their notice numbers in order.
pub async fn amend(
    ctx: &Ctx,
    ente: &str,
    iupd: &str,
    entry: Entry,
) -> Result<StoredPosition, AppError> {
    crate::audit::audited(ctx, Some(ente), "position.update", iupd, async {
        ctx.caller.require(
            ente,
            incasso_core::access::Area::Positions,
            incasso_core::access::Access::Write,
        )?;
        let at = Place::new("positions.amend", ente, iupd);
        let current = scoped(ctx, ente, iupd, "positions.amend").await?;
        let (service, office) = place(ctx, ente, &entry).await?;
        let e = ctx.store().get_ente(ente).await.at(at)?;
        let iuvs: Vec<String> = current
            .position
            .options
            .iter()
            .filter_map(|o| o.iuv.clone())
            .collect();
        let position = entry.position(Making {
            iupd: iupd.to_string(),
            ente: &e,
            service: &service,
            office: office.as_ref(),
            iuvs: &iuvs,
        })?;
        let placement = Placement {
            service: Some(service.code.clone()),
            office: office.map(|o| o.code),
        };
        let stored = ctx
            .store()
            .replace_position_placed(
                ente,
                iupd,
                position,
                Some(placement),
                ctx.now(),
                entry.publish,
            )
            .await
            .at(at)
            .map_err(in_entry_fields)?;
        ctx.store().durable().await.at(at)?;
        Ok(stored)
    })
    .await
}

/// The entry that would make `stored` again, and whether it does so
/// exactly: a position from elsewhere may have a shape the form does not
/// have (three beneficiaries, installments only, irregular dates), and an
/// update through the form would give it the form's.
pub fn entry_of(ente: &str, stored: &StoredPosition) -> (Entry, bool) {
    let p = &stored.position;
    let single = p.options.iter().find(|o| !o.is_partial_payment);
    let first = single.or(p.options.first());
    let installments = p.options.iter().filter(|o| o.is_partial_payment).count() as u32;
    let own = first.and_then(|o| {
        o.transfers
            .iter()
            .find(|t| t.organization_fiscal_code == ente)
    });
    let other = first.and_then(|o| {
        o.transfers
            .iter()
            .find(|t| t.organization_fiscal_code != ente)
    });
    let entry = Entry {
        iupd: Some(p.iupd.clone()),
        service: stored.placement.service.clone().unwrap_or_default(),
        office: stored.placement.office.clone(),
        debtor: p.debtor.clone(),
        description: first.map(|o| o.description.clone()).unwrap_or_default(),
        amount: p.total_amount().unwrap_or_default(),
        due_date: first
            .map(|o| incasso_core::time::to_rome(o.due_date).date())
            .unwrap_or_default(),
        installments,
        iban: own.and_then(|t| t.iban.clone()),
        second: other.map(|t| Beneficiary {
            fiscal_code: t.organization_fiscal_code.clone(),
            name: t.company_name.clone(),
            iban: t
                .iban
                .clone()
                .or_else(|| t.postal_iban.clone())
                .unwrap_or_default(),
            amount: t.amount,
        }),
        quotas: own
            .map(|t| {
                t.quotas
                    .iter()
                    .map(|q| (q.accertamento.clone(), q.amount))
                    .collect()
            })
            .unwrap_or_default(),
        publish: p.status != incasso_core::position::PositionStatus::Draft,
    };
    let fits = single.is_some()
        && p.options.iter().filter(|o| !o.is_partial_payment).count() == 1
        && installments != 1
        && first.is_some_and(|o| {
            o.transfers.len() <= 2 && o.transfers.iter().all(|t| t.stamp.is_none())
        });
    (entry, fits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_adds_up_to_the_cent() {
        assert_eq!(split(1000, &[1, 1, 1]), vec![334, 333, 333]);
        assert_eq!(split(100, &[80, 20]), vec![80, 20]);
        assert_eq!(split(33, &[80, 20]), vec![26, 7]);
        assert_eq!(split(10, &[10, 0]), vec![10, 0]);
        for total in [1, 7, 99, 12345] {
            let parts = split(total, &[3, 5, 7]);
            assert_eq!(parts.iter().sum::<i64>(), total);
        }
    }

    #[test]
    fn gpd_paths_become_the_entry_s_fields() {
        assert_eq!(entry_field("fiscalCode"), "debtor.fiscal_code");
        assert_eq!(entry_field("paymentOption[0].dueDate"), "due_date");
        assert_eq!(entry_field("paymentOption[0].transfer[0].iban"), "iban");
        assert_eq!(
            entry_field("paymentOption[0].transfer[1].iban"),
            "second.iban"
        );
        assert_eq!(
            entry_field("paymentOption[0].transfer[0].accountingQuotas"),
            "quotas"
        );
        assert_eq!(entry_field("accountingQuotas"), "quotas");
        for f in ["iupd", "service", "office"] {
            assert_eq!(entry_field(f), f);
        }
        for f in [
            "fiscalCode",
            "paymentOption[2].transfer[0].accountingQuotas[1].amount",
            "paymentOption[0].transfer",
        ] {
            assert!(ENTRY_FIELDS.contains(&entry_field(f)), "{f}");
        }
    }
}
