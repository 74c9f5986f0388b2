//! The back office's archive of positions: the search a clerk makes, its
//! export, and a position's page.

use super::{in_scope, office_scope};
use crate::Ctx;
use crate::error::{AppError, At, Kind, Place};
use crate::sheet::{Cell, MAX_EXPORT_ROWS, Sheet};
use chrono::{DateTime, NaiveDate, Utc};
use incasso_core::access::{Access, Area};
use incasso_core::catalogue::Service;
use incasso_core::ente::Office;
use incasso_core::position::PositionStatus;
use incasso_store::{
    PositionExtras, PositionRow, PositionSearch, SearchSort, SearchTotal, StoredPosition,
};

/// Positions per page of a search.
pub const PAGE_SIZE: u32 = 50;
/// The last page a search pages to: past it a clerk narrows the search
/// (or exports it), rather than page through a million positions.
const MAX_PAGE: u32 = 200;

/// A state a clerk filters by, with what it shows. "Pagata" takes the
/// reported ones too: a payment that a flow has reported stays a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusChoice {
    pub code: &'static str,
    pub label: &'static str,
    pub states: &'static [PositionStatus],
}

pub const STATUS_CHOICES: &[StatusChoice] = &[
    StatusChoice {
        code: "DRAFT",
        label: "Bozza",
        states: &[PositionStatus::Draft],
    },
    StatusChoice {
        code: "PUBLISHED",
        label: "Pubblicata, non ancora valida",
        states: &[PositionStatus::Published],
    },
    StatusChoice {
        code: "VALID",
        label: "Da pagare",
        states: &[PositionStatus::Valid],
    },
    StatusChoice {
        code: "PARTIALLY_PAID",
        label: "Pagata in parte",
        states: &[PositionStatus::PartiallyPaid],
    },
    StatusChoice {
        code: "PAID",
        label: "Pagata",
        states: &[PositionStatus::Paid, PositionStatus::Reported],
    },
    StatusChoice {
        code: "REPORTED",
        label: "Pagata e rendicontata",
        states: &[PositionStatus::Reported],
    },
    StatusChoice {
        code: "EXPIRED",
        label: "Scaduta",
        states: &[PositionStatus::Expired],
    },
    StatusChoice {
        code: "INVALID",
        label: "Annullata",
        states: &[PositionStatus::Invalid],
    },
];

/// A position's state as a clerk reads it.
pub fn status_label(status: PositionStatus) -> &'static str {
    match status {
        PositionStatus::Draft => "Bozza",
        PositionStatus::Published => "Pubblicata, non ancora valida",
        PositionStatus::Valid => "Da pagare",
        PositionStatus::Invalid => "Annullata",
        PositionStatus::Expired => "Scaduta",
        PositionStatus::PartiallyPaid => "Pagata in parte",
        PositionStatus::Paid => "Pagata",
        PositionStatus::Reported => "Pagata e rendicontata",
    }
}

/// A clerk's search, as typed.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// A fiscal code (or VAT number), or the start of a name.
    pub debtor: Option<String>,
    pub notice_number: Option<String>,
    pub iuv: Option<String>,
    pub iupd: Option<String>,
    pub service: Option<String>,
    pub office: Option<String>,
    /// One of [`STATUS_CHOICES`]' codes.
    pub status: Option<String>,
    /// Days in Italy, both included.
    pub due_from: Option<NaiveDate>,
    pub due_to: Option<NaiveDate>,
    pub sort: SearchSort,
    pub descending: bool,
}

/// A page of a search.
#[derive(Debug, Clone)]
pub struct Found {
    pub rows: Vec<PositionRow>,
    /// From 1.
    pub page: u32,
    pub has_next: bool,
    pub total: SearchTotal,
    /// The search stopped before filling the page: narrow it.
    pub truncated: bool,
}

/// Whether `text` is a fiscal code (16 letters and digits) or a numeric
/// one (11 digits), rather than a name.
fn is_fiscal_code(text: &str) -> bool {
    (text.len() == 16 && text.bytes().all(|b| b.is_ascii_alphanumeric()))
        || (text.len() == 11 && text.bytes().all(|b| b.is_ascii_digit()))
}

/// Digits only, as notice numbers and IUVs are often typed in groups.
fn digits(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect()
}

impl Search {
    /// As the store searches, within the caller's offices.
    fn to_store(&self, ctx: &Ctx) -> Result<PositionSearch, AppError> {
        let given = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let debtor = given(&self.debtor);
        let (fiscal_code, name) = match debtor {
            Some(d) if is_fiscal_code(&d) => (Some(d.to_uppercase()), None),
            Some(d) => (None, Some(d)),
            None => (None, None),
        };
        if name.as_ref().is_some_and(|n| n.chars().count() > 70) {
            return Err(AppError::invalid(
                "BAD_FORMAT",
                "Debitore: al più 70 caratteri",
            ));
        }
        let statuses = match given(&self.status) {
            None => Vec::new(),
            Some(code) => STATUS_CHOICES
                .iter()
                .find(|c| c.code == code)
                .map(|c| c.states.to_vec())
                .ok_or_else(|| AppError::invalid("BAD_FORMAT", "Stato: scelta non valida"))?,
        };
        let start =
            |d: NaiveDate| incasso_core::time::from_rome(d.and_time(chrono::NaiveTime::MIN));
        let end = |d: NaiveDate| {
            incasso_core::time::from_rome(
                d.and_hms_micro_opt(23, 59, 59, 999_999).unwrap_or_default(),
            )
        };
        if let (Some(f), Some(t)) = (self.due_from, self.due_to)
            && f > t
        {
            return Err(AppError::invalid(
                "DATE_ORDER",
                "Scadenza dal: la data iniziale è successiva a quella finale",
            ));
        }
        Ok(PositionSearch {
            debtor_fiscal_code: fiscal_code,
            debtor_name: name,
            notice_number: given(&self.notice_number).map(|v| digits(&v)),
            iuv: given(&self.iuv).map(|v| digits(&v)),
            iupd: given(&self.iupd),
            service: given(&self.service),
            office: given(&self.office),
            office_scope: office_scope(ctx),
            statuses,
            due_from: self.due_from.map(start),
            due_to: self.due_to.map(end),
            sort: self.sort,
            descending: self.descending,
        })
    }
}

/// Page `page` (from 1) of the Ente's positions that `search` finds,
/// within the caller's offices.
pub async fn search(ctx: &Ctx, ente: &str, search: &Search, page: u32) -> Result<Found, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Read)?;
    let page = page.max(1);
    if page > MAX_PAGE {
        return Err(AppError::invalid(
            "PAGE_TOO_FAR",
            format!(
                "Pagina: si possono scorrere le prime {MAX_PAGE} pagine; restringere la ricerca o esportarla"
            ),
        ));
    }
    let s = search.to_store(ctx)?;
    let found = ctx
        .store()
        .search_positions(
            ente,
            &s,
            u64::from(page - 1) * u64::from(PAGE_SIZE),
            PAGE_SIZE,
            ctx.now(),
        )
        .await
        .at(Place::new("positions.search", ente, ""))?;
    Ok(Found {
        rows: found.rows,
        page,
        has_next: found.has_next,
        total: found.total,
        truncated: found.truncated,
    })
}

/// Every position `search` finds, as the list shows them, for a file; at
/// most [`MAX_EXPORT_ROWS`].
pub async fn export(ctx: &Ctx, ente: &str, search: &Search) -> Result<Sheet, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Read)?;
    let s = search.to_store(ctx)?;
    let rows = ctx
        .store()
        .export_positions(ente, &s, MAX_EXPORT_ROWS, ctx.now())
        .await
        .at(Place::new("positions.export", ente, ""))?
        .ok_or_else(|| {
            AppError::new(
                Kind::Unprocessable,
                "TOO_MANY_TO_EXPORT",
                format!(
                    "La ricerca trova più di {} posizioni: restringerla (ad esempio per servizio, stato o scadenza) per esportarla.",
                    incasso_core::Cents(i64::from(MAX_EXPORT_ROWS) * 100)
                        .to_italian()
                        .trim_end_matches(",00")
                ),
            )
        })?;
    Ok(sheet(&rows))
}

/// Positions as a list shows them and a file holds them.
pub fn sheet(rows: &[PositionRow]) -> Sheet {
    let mut sheet = Sheet::new(
        "Posizioni debitorie",
        &[
            "IUPD",
            "Debitore",
            "Codice fiscale",
            "Numero avviso",
            "Servizio",
            "Ufficio",
            "Importo",
            "Scadenza",
            "Stato",
        ],
    );
    for r in rows {
        let due = incasso_core::time::to_rome(r.due_date).date();
        sheet.push(vec![
            Cell::text(&r.iupd),
            Cell::text(&r.debtor_name),
            Cell::text(&r.debtor_fiscal_code),
            Cell::opt_text(r.notice_number.clone()),
            Cell::opt_text(r.service_name.clone().or_else(|| r.service_code.clone())),
            Cell::opt_text(r.office_name.clone().or_else(|| r.office_code.clone())),
            Cell::Money(r.amount),
            Cell::Date(due),
            Cell::text(status_label(r.status)),
        ]);
    }
    sheet
}

/// What a search may be narrowed to: the services and offices of the
/// catalogue the caller sees (an office operator: their offices, and the
/// services of those offices or of none), by code with their names.
#[derive(Debug, Clone, Default)]
pub struct SearchChoices {
    pub services: Vec<(String, String)>,
    pub offices: Vec<(String, String)>,
}

pub async fn search_choices(ctx: &Ctx, ente: &str) -> Result<SearchChoices, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Read)?;
    let at = Place::new("positions.search_choices", ente, "");
    let scope = office_scope(ctx);
    let offices = ctx
        .store()
        .list_offices(ente)
        .await
        .at(at)?
        .into_iter()
        .filter(|o| scope.as_ref().is_none_or(|s| s.contains(&o.code)))
        .map(|o| (o.code, o.name))
        .collect();
    let services = ctx
        .store()
        .list_services(ente)
        .await
        .at(at)?
        .into_iter()
        .filter(|s| match (&scope, &s.office_code) {
            (None, _) | (Some(_), None) => true,
            (Some(mine), Some(o)) => mine.contains(o),
        })
        .map(|s| (s.code, s.name))
        .collect();
    Ok(SearchChoices { services, offices })
}

/// A position's page: the position (as shown now), where it belongs, its
/// receipts and history, and what the caller may do with it.
#[derive(Debug, Clone)]
pub struct Detail {
    pub stored: StoredPosition,
    pub status: PositionStatus,
    pub service: Option<Service>,
    pub office: Option<Office>,
    pub extras: PositionExtras,
    /// The caller may change positions.
    pub may_write: bool,
    pub may_publish: bool,
    pub may_update: bool,
    pub may_invalidate: bool,
    pub may_delete: bool,
    /// Each option may be printed on a notice now.
    pub printable: Vec<bool>,
}

/// The page of position `iupd`, within the caller's offices.
pub async fn detail(ctx: &Ctx, ente: &str, iupd: &str) -> Result<Detail, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Read)?;
    let at = Place::new("positions.detail", ente, iupd);
    let stored = ctx.store().get_position(ente, iupd).await.at(at)?;
    let stored = in_scope(ctx, stored)?;
    let extras = ctx.store().position_extras(ente, &stored).await.at(at)?;
    let service = match &stored.placement.service {
        Some(code) => ctx.store().get_service(ente, code).await.ok(),
        None => None,
    };
    let office = match &stored.placement.office {
        Some(code) => ctx
            .store()
            .list_offices(ente)
            .await
            .at(at)?
            .into_iter()
            .find(|o| &o.code == code),
        None => None,
    };
    let now: DateTime<Utc> = ctx.now();
    let p = &stored.position;
    let status = p.effective_status(now);
    let may_write = ctx
        .caller
        .require(ente, Area::Positions, Access::Write)
        .is_ok();
    let printable = p
        .options
        .iter()
        .map(|o| {
            o.status == incasso_core::position::OptionStatus::Unpaid
                && matches!(
                    status,
                    PositionStatus::Valid | PositionStatus::PartiallyPaid
                )
        })
        .collect();
    Ok(Detail {
        may_publish: may_write && p.status == PositionStatus::Draft,
        may_update: may_write && p.check_updatable(now).is_ok(),
        may_invalidate: may_write
            && !p.has_paid_option()
            && matches!(status, PositionStatus::Published | PositionStatus::Valid),
        may_delete: may_write && p.status == PositionStatus::Draft,
        may_write,
        status,
        service,
        office,
        extras,
        printable,
        stored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_debtor_is_a_fiscal_code_or_a_name() {
        assert!(is_fiscal_code("RSSMRA85T10A562S"));
        assert!(is_fiscal_code("80000130585"));
        assert!(!is_fiscal_code("Rossi"));
        assert!(!is_fiscal_code("Rossi Mario Luig"));
        assert_eq!(digits("3010 0000 0000 1234 56"), "301000000000123456");
    }

    #[test]
    fn every_status_has_a_label_and_paid_takes_the_reported() {
        for s in PositionStatus::ALL {
            assert!(!status_label(s).is_empty());
        }
        let paid = STATUS_CHOICES.iter().find(|c| c.code == "PAID").unwrap();
        assert!(paid.states.contains(&PositionStatus::Reported));
    }
}
