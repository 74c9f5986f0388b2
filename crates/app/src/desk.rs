//! The Sportello Digitale: the counter desk, where a clerk issues a
//! position on the spot for the person in front of them, prints its
//! notice and the Ente's copy (*avviso PA*), mails the notice, finds a
//! person's open positions by fiscal code, and closes the desk's day.
//!
//! A position is issued from a catalogue service and its form, the same
//! form definitions as spontaneous payments (`portal::spontaneous`), and
//! made by the same function: one notice, the service's taxonomy, account
//! and accertamento quota, an IUV from the Ente's coordinator. What the
//! desk adds is where and by whom (`desk_positions`), a due date a person
//! can keep ([`DUE_DAYS`]), and the day's report.
//!
//! Rules:
//! - issuing needs the Positions area for writing; a clerk limited to
//!   offices reaches only the desks and services of those offices (a desk
//!   of no office is every clerk's of the Ente), and another Ente's desk
//!   or position is "not found";
//! - the form carries a one-time token: the position's iupd is made from
//!   it, so a double click issues once and answers the same position;
//! - a closed day is closed for good: its report is frozen at closing
//!   (later receipts do not change it), closing again answers the first
//!   closing, and nothing more is issued at that desk on that day.

use crate::error::{AppError, At, Kind, Place};
use crate::portal::spontaneous::{self as sp, ServiceForm};
use crate::sheet::{Cell, Sheet};
use crate::{Ctx, mail};
use chrono::{DateTime, Days, NaiveDate, Utc};
use incasso_core::Cents;
use incasso_core::access::{Access, Area};
use incasso_core::form::{Accepted, Answers};
use incasso_core::position::PositionStatus;
use incasso_store::desks::{DeskDayRecord, DeskRecord, IssuedRecord};
use incasso_store::{PositionRow, StoreError, StoredPosition};
use serde::{Deserialize, Serialize};

/// Every position issued at a desk has an iupd that starts so
/// (*Sportello Digitale*), then the form's one-time token.
pub const IUPD_PREFIX: &str = "SD-";

/// A position issued at a desk is due this many days later: the person
/// may take the notice home and pay it at any PSP.
pub const DUE_DAYS: u64 = 30;

/// A desk as the clerk sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desk {
    pub code: String,
    pub name: String,
    pub office: Option<String>,
    pub office_name: Option<String>,
}

/// A service the desk can issue from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskService {
    pub code: String,
    pub name: String,
    pub office_name: Option<String>,
}

/// One accertamento's share of an issued position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quota {
    /// `2026/ACC-ANAG`.
    pub accertamento: String,
    pub description: String,
    pub amount: Cents,
}

/// A position issued at a desk, as the issued page, the reprint and the
/// Ente's copy show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub iupd: String,
    pub notice_number: String,
    pub iuv: String,
    pub amount: Cents,
    pub due: DateTime<Utc>,
    pub causale: String,
    pub service_code: String,
    pub service_name: String,
    pub debtor_fiscal_code: String,
    pub debtor_name: String,
    pub email: Option<String>,
    pub desk: Desk,
    /// The clerk's username and name.
    pub operator: String,
    pub operator_name: String,
    pub issued_at: DateTime<Utc>,
    pub quotas: Vec<Quota>,
    pub status: PositionStatus,
    /// As the clerk reads it.
    pub status_label: &'static str,
    /// Whether it can still be paid (pushed to the terminal, mailed).
    pub payable: bool,
}

/// A line of the day's issued positions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedLine {
    pub at: DateTime<Utc>,
    pub operator: String,
    pub iupd: String,
    pub notice_number: String,
    pub service_code: String,
    pub debtor_name: String,
    pub debtor_fiscal_code: String,
    pub amount: Cents,
    /// The notice's state at the report's time (`Da pagare`, `Pagato`...).
    pub state: String,
}

/// A payment collected on the desk's day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectedLine {
    pub at: DateTime<Utc>,
    pub notice_number: String,
    pub iuv: String,
    pub receipt_id: String,
    pub amount: Cents,
    /// How: the desk's POS terminal, or the PSP that collected it.
    pub channel: String,
}

/// Who closed a day, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closing {
    pub by: String,
    pub at: DateTime<Utc>,
}

/// A desk's day: what was issued at it, what was collected on those
/// positions (and at its POS terminal), the totals, and its closing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayReport {
    pub desk: String,
    pub desk_name: String,
    pub day: NaiveDate,
    pub issued: Vec<IssuedLine>,
    pub collected: Vec<CollectedLine>,
    pub issued_total: Cents,
    pub collected_total: Cents,
    /// Of the collected, what was taken at the desk's POS terminal.
    pub pos_total: Cents,
    #[serde(skip)]
    pub closed: Option<Closing>,
}

fn field_error(
    field: &str,
    code: &'static str,
    message: impl Into<String>,
) -> incasso_core::FieldError {
    incasso_core::FieldError {
        field: field.to_string(),
        code,
        message: message.into(),
    }
}

fn desk_not_found() -> AppError {
    AppError::new(
        Kind::NotFound,
        "DESK_NOT_FOUND",
        "sportello non trovato: sceglierne uno tra quelli dell'ente",
    )
}

fn service_not_found() -> AppError {
    AppError::new(
        Kind::NotFound,
        "SERVICE_NOT_FOUND",
        "servizio non trovato: sceglierne uno tra quelli che lo sportello può emettere",
    )
}

fn not_issued_here() -> AppError {
    AppError::new(
        Kind::NotFound,
        "NOT_FOUND",
        "posizione non trovata tra quelle emesse allo sportello",
    )
}

/// Today in Italy.
pub fn today(ctx: &Ctx) -> NaiveDate {
    incasso_core::time::to_rome(ctx.now()).date()
}

/// The instants a day in Italy spans: `[start, next day's start)`.
fn day_span(day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = |d: NaiveDate| incasso_core::time::from_rome(d.and_time(chrono::NaiveTime::MIN));
    let next = day.checked_add_days(Days::new(1)).unwrap_or(day);
    (start(day), start(next))
}

async fn office_names(ctx: &Ctx, ente: &str) -> Result<Vec<(String, String)>, AppError> {
    Ok(ctx
        .store()
        .list_offices(ente)
        .await
        .at(Place::new("desk.offices", ente, ""))?
        .into_iter()
        .map(|o| (o.code, o.name))
        .collect())
}

fn view(d: DeskRecord, offices: &[(String, String)]) -> Desk {
    let office_name = d
        .office
        .as_ref()
        .and_then(|o| offices.iter().find(|(c, _)| c == o).map(|(_, n)| n.clone()));
    Desk {
        code: d.code,
        name: d.name,
        office: d.office,
        office_name,
    }
}

/// Whether the caller may work at a desk of `office` (none: every
/// clerk's of the Ente).
fn reaches_desk(ctx: &Ctx, office: Option<&str>) -> bool {
    office.is_none() || crate::positions::sees_office(ctx, office)
}

/// The Ente's desks the caller may work at.
pub async fn list(ctx: &Ctx, ente: &str) -> Result<Vec<Desk>, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Read)?;
    let at = Place::new("desk.list", ente, "");
    let offices = office_names(ctx, ente).await?;
    Ok(ctx
        .store()
        .list_desks(ente)
        .await
        .at(at)?
        .into_iter()
        .filter(|d| reaches_desk(ctx, d.office.as_deref()))
        .map(|d| view(d, &offices))
        .collect())
}

/// The desk `code`, if the caller may work at it (else not found).
pub async fn get(ctx: &Ctx, ente: &str, code: &str) -> Result<Desk, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Read)?;
    if !incasso_core::text::is_safe_identifier(code, 35) {
        return Err(desk_not_found());
    }
    let at = Place::new("desk.get", ente, code);
    let d = ctx
        .store()
        .get_desk(ente, code)
        .await
        .at(at)?
        .filter(|d| reaches_desk(ctx, d.office.as_deref()))
        .ok_or_else(desk_not_found)?;
    Ok(view(d, &office_names(ctx, ente).await?))
}

/// Adds a desk to the Ente (its administrators): `code` is the Ente's
/// name for it (letters, digits, `-`, `_`, `.`; the POS gateway's
/// `workstation`), `office` the office it belongs to, if any.
pub async fn create(
    ctx: &Ctx,
    ente: &str,
    code: &str,
    name: &str,
    office: Option<&str>,
) -> Result<Desk, AppError> {
    let code = code.trim();
    crate::audit::audited(ctx, Some(ente), "desk.create", code, async {
        ctx.caller.require_ente(ente)?;
        let name = name.trim();
        let office = office.map(str::trim).filter(|o| !o.is_empty());
        let mut errors = Vec::new();
        if !incasso_core::text::is_safe_identifier(code, 35) {
            errors.push(field_error(
                "code",
                "BAD_FORMAT",
                "codice: da 1 a 35 tra lettere, cifre, '-', '_' e '.' (esempio SPORTELLO_01)",
            ));
        }
        if name.is_empty() || name.chars().count() > 70 {
            errors.push(field_error(
                "name",
                "BAD_FORMAT",
                "nome: da 1 a 70 caratteri",
            ));
        }
        let offices = office_names(ctx, ente).await?;
        if let Some(o) = office
            && !offices.iter().any(|(c, _)| c == o)
        {
            errors.push(field_error(
                "office",
                "UNKNOWN_OFFICE",
                "ufficio: non è tra gli uffici dell'ente",
            ));
        }
        if !errors.is_empty() {
            let mut e = AppError::invalid(errors[0].code, "lo sportello non è valido");
            e.errors = errors;
            return Err(e);
        }
        let record = DeskRecord {
            ente: ente.to_string(),
            code: code.to_string(),
            name: name.to_string(),
            office: office.map(str::to_string),
            created_at: ctx.now(),
        };
        let at = Place::new("desk.create", ente, code);
        if !ctx.store().create_desk(&record).await.at(at)? {
            return Err(AppError::conflict(
                "DESK_EXISTS",
                format!("esiste già uno sportello con il codice {code}"),
            ));
        }
        Ok(view(record, &offices))
    })
    .await
}

/// The service `s` is one the desk may issue from: active, in the
/// caller's offices, with a form.
async fn desk_form(
    ctx: &Ctx,
    ente: &str,
    s: incasso_core::catalogue::Service,
) -> Result<Option<ServiceForm>, AppError> {
    if !s.active || !crate::positions::sees_office(ctx, s.office_code.as_deref()) {
        return Ok(None);
    }
    sp::form_of(ctx, ente, s).await
}

/// The services the caller can issue from at a desk: the Ente's active
/// services in their offices that have a form (a spontaneous service's,
/// or a fixed amount).
pub async fn services(ctx: &Ctx, ente: &str) -> Result<Vec<DeskService>, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Write)?;
    let at = Place::new("desk.services", ente, "");
    let offices = office_names(ctx, ente).await?;
    let mut out = Vec::new();
    for s in ctx.store().list_services(ente).await.at(at)? {
        if let Some(f) = desk_form(ctx, ente, s).await? {
            out.push(DeskService {
                office_name: f
                    .service
                    .office_code
                    .as_ref()
                    .and_then(|o| offices.iter().find(|(c, _)| c == o).map(|(_, n)| n.clone())),
                code: f.service.code,
                name: f.service.name,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The form of service `code`, as the desk shows it.
pub async fn service_form(ctx: &Ctx, ente: &str, code: &str) -> Result<ServiceForm, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Write)?;
    if !incasso_core::text::is_safe_identifier(code, 35) {
        return Err(service_not_found());
    }
    let at = Place::new("desk.service_form", ente, code);
    let service = match ctx.store().get_service(ente, code).await {
        Ok(s) => s,
        Err(StoreError::NotFound(_)) => return Err(service_not_found()),
        Err(e) => return Err(crate::error::from_store(e, &at)),
    };
    desk_form(ctx, ente, service)
        .await?
        .ok_or_else(service_not_found)
}

/// Checks the debtor's data and the form's answers (the step to the
/// summary): what would be issued, or every wrong field with its reason.
pub async fn check(
    ctx: &Ctx,
    ente: &str,
    code: &str,
    answers: &Answers,
) -> Result<(ServiceForm, Accepted), AppError> {
    let f = service_form(ctx, ente, code).await?;
    let accepted = f.def.check(answers).map_err(|i| sp::rejected(i.0))?;
    Ok((f, accepted))
}

fn day_closed(day: NaiveDate) -> AppError {
    AppError::conflict(
        "DAY_CLOSED",
        format!(
            "la giornata del {} di questo sportello è chiusa: non si emettono altre posizioni",
            day.format("%d/%m/%Y")
        ),
    )
}

fn used_token() -> AppError {
    AppError::conflict(
        "FORM_ALREADY_SENT",
        "Questo modulo è già stato inviato per un'altra posizione: compilarlo di nuovo.",
    )
}

/// Issues the position the clerk confirmed at desk `desk`: made, published
/// and recorded as issued at that desk by the caller. `token` is the
/// form's one-time token: the same token again answers the same position.
pub async fn issue(
    ctx: &Ctx,
    ente: &str,
    desk: &str,
    code: &str,
    token: &str,
    answers: &Answers,
) -> Result<Issued, AppError> {
    if !sp::well_formed_token(token) {
        return Err(AppError::invalid(
            "BAD_TOKEN",
            "Il modulo non è valido o è scaduto: compilarlo di nuovo.",
        ));
    }
    let iupd = format!("{IUPD_PREFIX}{}", token.to_uppercase());
    crate::audit::audited(ctx, Some(ente), "desk.issue", &iupd, async {
        ctx.caller.require(ente, Area::Positions, Access::Write)?;
        let at = Place::new("desk.issue", ente, &iupd);
        let d = get(ctx, ente, desk).await?;
        let (f, accepted) = check(ctx, ente, code, answers).await?;
        let stored = match ctx.store().get_position(ente, &iupd).await {
            Ok(s) => s,
            Err(StoreError::NotFound(_)) => {
                let day = today(ctx);
                if ctx
                    .store()
                    .desk_day(ente, &d.code, &day.to_string())
                    .await
                    .at(at)?
                    .is_some()
                {
                    return Err(day_closed(day));
                }
                let due_day = day.checked_add_days(Days::new(DUE_DAYS)).unwrap_or(day);
                sp::create(ctx, ente, &f, &accepted, &iupd, sp::end_of(due_day))
                    .await
                    .map_err(|e| sp::misconfigured(e, ente, code))?
            }
            Err(e) => return Err(crate::error::from_store(e, &at)),
        };
        // The same token for another person or service is not a retry.
        if !stored
            .position
            .debtor
            .fiscal_code
            .eq_ignore_ascii_case(&accepted.debtor_fiscal_code)
            || stored.placement.service.as_deref() != Some(code)
        {
            return Err(used_token());
        }
        let o = stored
            .position
            .options
            .first()
            .ok_or_else(|| AppError::internal(&at, &StoreError::NotFound("avviso")))?;
        let nav = o
            .notice_number
            .as_ref()
            .map(|n| n.as_str().to_string())
            .ok_or_else(|| AppError::internal(&at, &StoreError::NotFound("avviso")))?;
        let record = IssuedRecord {
            ente: ente.to_string(),
            desk: d.code.clone(),
            iupd: iupd.clone(),
            notice_number: nav,
            service_code: code.to_string(),
            amount: o.amount.0,
            operator: operator_of(ctx),
            day: today(ctx).to_string(),
            issued_at: ctx.now(),
        };
        ctx.store().record_desk_position(&record).await.at(at)?;
        let record = ctx
            .store()
            .desk_position(ente, &iupd)
            .await
            .at(at)?
            .unwrap_or(record);
        issued_view(ctx, ente, stored, record).await
    })
    .await
}

/// The caller's name as the desk's records keep it.
fn operator_of(ctx: &Ctx) -> String {
    match &ctx.caller {
        crate::Caller::Operator(o) => o.username.clone(),
        other => other.actor(),
    }
}

async fn issued_view(
    ctx: &Ctx,
    ente: &str,
    stored: StoredPosition,
    record: IssuedRecord,
) -> Result<Issued, AppError> {
    let at = Place::new("desk.issued", ente, &record.iupd);
    let d = match get(ctx, ente, &record.desk).await {
        Ok(d) => d,
        Err(e) if e.kind == Kind::NotFound => return Err(not_issued_here()),
        Err(e) => return Err(e),
    };
    let now = ctx.now();
    let status = stored.position.effective_status(now);
    let p = &stored.position;
    let o = p
        .options
        .first()
        .ok_or_else(|| AppError::internal(&at, &StoreError::NotFound("avviso")))?;
    let service_name = match ctx.store().get_service(ente, &record.service_code).await {
        Ok(s) => s.name,
        Err(_) => record.service_code.clone(),
    };
    let mut quotas = Vec::new();
    for t in &o.transfers {
        for q in &t.quotas {
            let description = ctx
                .store()
                .get_accertamento(ente, q.accertamento.year, &q.accertamento.code)
                .await
                .map(|a| a.description)
                .unwrap_or_default();
            quotas.push(Quota {
                accertamento: format!("{}/{}", q.accertamento.year, q.accertamento.code),
                description,
                amount: q.amount,
            });
        }
    }
    let operator_name = match ctx.store().operator_by_username(&record.operator).await {
        Ok(Some(op)) => op.full_name,
        _ => record.operator.clone(),
    };
    let payable = matches!(
        status,
        PositionStatus::Valid | PositionStatus::Published | PositionStatus::PartiallyPaid
    ) && o.status == incasso_core::position::OptionStatus::Unpaid;
    Ok(Issued {
        iuv: o.iuv.clone().unwrap_or_default(),
        notice_number: record.notice_number.clone(),
        amount: o.amount,
        due: o.due_date,
        causale: o.description.clone(),
        service_code: record.service_code.clone(),
        service_name,
        debtor_fiscal_code: p.debtor.fiscal_code.clone(),
        debtor_name: p.debtor.full_name.clone(),
        email: p.debtor.email.clone(),
        desk: d,
        operator: record.operator.clone(),
        operator_name,
        issued_at: record.issued_at,
        quotas,
        status,
        status_label: crate::positions::status_label(status),
        payable,
        iupd: record.iupd,
    })
}

/// A position issued at one of the caller's desks (the issued page, its
/// reprint, the Ente's copy).
pub async fn issued(ctx: &Ctx, ente: &str, iupd: &str) -> Result<Issued, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Read)?;
    if !iupd.starts_with(IUPD_PREFIX) || !incasso_core::position::is_valid_iupd(iupd) {
        return Err(not_issued_here());
    }
    let at = Place::new("desk.issued", ente, iupd);
    let record = ctx
        .store()
        .desk_position(ente, iupd)
        .await
        .at(at)?
        .ok_or_else(not_issued_here)?;
    let stored = match ctx.store().get_position(ente, iupd).await {
        Ok(s) => s,
        Err(StoreError::NotFound(_)) => return Err(not_issued_here()),
        Err(e) => return Err(crate::error::from_store(e, &at)),
    };
    let stored = crate::positions::in_scope(ctx, stored).map_err(|_| not_issued_here())?;
    issued_view(ctx, ente, stored, record).await
}

/// The payment notice of a position issued at a desk, as PDF.
pub async fn notice_pdf(ctx: &Ctx, ente: &str, iupd: &str) -> Result<Vec<u8>, AppError> {
    let i = issued(ctx, ente, iupd).await?;
    crate::notices::notice_pdf(
        ctx,
        ente,
        &i.notice_number,
        incasso_notice::Language::Italian,
    )
    .await
}

/// The *avviso PA*: the Ente's copy of what was issued, as PDF.
pub async fn avviso_pa(ctx: &Ctx, ente: &str, iupd: &str) -> Result<Vec<u8>, AppError> {
    let i = issued(ctx, ente, iupd).await?;
    let at = Place::new("desk.avviso_pa", ente, iupd);
    let e = ctx.store().get_ente(ente).await.at(at)?;
    let logo = ctx.store().logo(ente).await.at(at)?.map(|(_, bytes)| bytes);
    let copy = incasso_notice::issued::IssuedCopy {
        creditor: incasso_notice::Creditor {
            name: e.name,
            fiscal_code: e.fiscal_code,
            logo,
            ..Default::default()
        },
        desk: format!("{} ({})", i.desk.name, i.desk.code),
        office: i.desk.office_name.clone(),
        clerk: if i.operator_name == i.operator {
            i.operator.clone()
        } else {
            format!("{} ({})", i.operator_name, i.operator)
        },
        issued_at: incasso_core::time::to_rome(i.issued_at),
        debtor: incasso_notice::receipt::Party {
            name: i.debtor_name.clone(),
            fiscal_code: i.debtor_fiscal_code.clone(),
        },
        email: i.email.clone(),
        service: i.service_name.clone(),
        description: i.causale.clone(),
        notice_number: i.notice_number.clone(),
        iuv: i.iuv.clone(),
        position: i.iupd.clone(),
        amount: i.amount,
        due: incasso_core::time::to_rome(i.due).date(),
        quotas: i
            .quotas
            .iter()
            .map(|q| incasso_notice::issued::Quota {
                accertamento: q.accertamento.clone(),
                description: q.description.clone(),
                amount: q.amount,
            })
            .collect(),
    };
    tokio::task::spawn_blocking(move || incasso_notice::issued::render_issued(&copy))
        .await
        .map_err(|e| AppError::internal(&at, &e))?
        .map_err(|e| AppError::internal(&at, &e))
}

/// What asking to mail a notice did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mailed {
    /// Queued now: it leaves in a moment.
    Queued,
    /// It was asked for before (a double click): queued once.
    AlreadyQueued,
}

/// Mails the notice of a position issued at a desk to `address` (the
/// debtor's, as typed at the desk), through the outbox: once per notice
/// and address, however many times it is asked.
pub async fn email_notice(
    ctx: &Ctx,
    ente: &str,
    iupd: &str,
    address: &str,
) -> Result<Mailed, AppError> {
    crate::audit::audited(ctx, Some(ente), "desk.email_notice", iupd, async {
        ctx.caller.require(ente, Area::Positions, Access::Write)?;
        let i = issued(ctx, ente, iupd).await?;
        if !i.payable {
            return Err(AppError::conflict(
                "NOT_PAYABLE",
                format!(
                    "l'avviso non si può più pagare (stato: {}): non viene inviato",
                    i.status_label
                ),
            ));
        }
        // The address first: a wrong one is the clerk's to fix, whatever
        // the installation.
        let address = mail::check_address(address)?;
        if !mail::enabled(&ctx.app) {
            return Err(AppError::new(
                Kind::Unprocessable,
                "MAIL_DISABLED",
                "l'invio delle e-mail non è configurato: stampare l'avviso e consegnarlo",
            ));
        }
        let queued = mail::queue_notice(ctx, ente, &i.notice_number, &address).await?;
        Ok(if queued {
            Mailed::Queued
        } else {
            Mailed::AlreadyQueued
        })
    })
    .await
}

/// A position still to be paid, found by the debtor's fiscal code.
pub type Open = PositionRow;

/// The open positions (to be paid, in part or in whole) of the person
/// with `fiscal_code`, in the caller's offices, soonest due first.
pub async fn find(ctx: &Ctx, ente: &str, fiscal_code: &str) -> Result<Vec<Open>, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Read)?;
    let fc = fiscal_code.trim().to_uppercase();
    if let Err(e) = incasso_core::codes::check_fiscal_code(&fc) {
        let mut err =
            AppError::invalid("BAD_FISCAL_CODE", format!("codice fiscale non valido: {e}"));
        err.errors = vec![field_error(
            "codice_fiscale",
            "BAD_FISCAL_CODE",
            format!("codice fiscale non valido: {e}"),
        )];
        return Err(err);
    }
    let search = crate::positions::Search {
        debtor: Some(fc),
        sort: incasso_store::SearchSort::DueDate,
        ..Default::default()
    };
    let found = crate::positions::search(ctx, ente, &search, 1).await?;
    Ok(found
        .rows
        .into_iter()
        .filter(|r| {
            matches!(
                r.status,
                PositionStatus::Valid | PositionStatus::Published | PositionStatus::PartiallyPaid
            )
        })
        .collect())
}

/// The notice of an open position found by fiscal code (reprint), as PDF.
pub async fn reprint(ctx: &Ctx, ente: &str, iupd: &str) -> Result<Vec<u8>, AppError> {
    crate::notices::position_pdf(ctx, ente, iupd, incasso_notice::Language::Italian).await
}

fn option_state(status: Option<&str>) -> &'static str {
    match status {
        Some("PO_PAID") => "Pagato",
        Some("PO_UNPAID") => "Da pagare",
        Some("PO_PARTIALLY_REPORTED") | Some("PO_REPORTED") => "Pagato e rendicontato",
        Some(_) => "Non pagabile",
        None => "Eliminato",
    }
}

/// The day's report as it is now.
async fn live_report(
    ctx: &Ctx,
    ente: &str,
    d: &Desk,
    day: NaiveDate,
) -> Result<DayReport, AppError> {
    let at = Place::new("desk.day", ente, &d.code);
    let issued: Vec<IssuedLine> = ctx
        .store()
        .desk_issued(ente, &d.code, &day.to_string())
        .await
        .at(at)?
        .into_iter()
        .map(|r| IssuedLine {
            at: r.issued.issued_at,
            operator: r.issued.operator,
            iupd: r.issued.iupd,
            notice_number: r.issued.notice_number,
            service_code: r.issued.service_code,
            debtor_name: r.debtor_name,
            debtor_fiscal_code: r.debtor_fiscal_code,
            amount: Cents(r.issued.amount),
            state: option_state(r.option_status.as_deref()).to_string(),
        })
        .collect();
    let (from, to) = day_span(day);
    let collected: Vec<CollectedLine> = ctx
        .store()
        .desk_collected(ente, &d.code, from, to)
        .await
        .at(at)?
        .into_iter()
        .map(|r| CollectedLine {
            at: r.paid_at,
            notice_number: r.notice_number,
            iuv: r.iuv,
            receipt_id: r.receipt_id,
            amount: Cents(r.amount),
            channel: r.psp_name,
        })
        .collect();
    let collected = with_pos(ctx, ente, d, day, collected).await?;
    let issued_total = Cents(issued.iter().map(|l| l.amount.0).sum());
    let collected_total = Cents(collected.iter().map(|l| l.amount.0).sum());
    let pos_total = Cents(
        collected
            .iter()
            .filter(|l| l.channel == POS_CHANNEL)
            .map(|l| l.amount.0)
            .sum(),
    );
    Ok(DayReport {
        desk: d.code.clone(),
        desk_name: d.name.clone(),
        day,
        issued,
        collected,
        issued_total,
        collected_total,
        pos_total,
        closed: None,
    })
}

/// How a payment taken at the desk's own POS terminal is named.
pub const POS_CHANNEL: &str = "POS dello sportello";

/// The collected payments, with those taken at the desk's POS terminal
/// (its sessions of the day) named so, and added when their notice was
/// not issued at the desk (a notice of a supply, paid at the counter).
async fn with_pos(
    ctx: &Ctx,
    ente: &str,
    d: &Desk,
    day: NaiveDate,
    mut collected: Vec<CollectedLine>,
) -> Result<Vec<CollectedLine>, AppError> {
    let at = Place::new("desk.day.pos", ente, &d.code);
    let sessions = crate::pos::sessions_of_desk(ctx, ente, &d.code, day).await?;
    let (from, to) = day_span(day);
    for s in sessions {
        for (nav, receipt_id) in &s.receipts {
            if let Some(line) = collected.iter_mut().find(|l| &l.receipt_id == receipt_id) {
                line.channel = POS_CHANNEL.to_string();
                continue;
            }
            for r in ctx
                .store()
                .notice_collected(ente, nav, from, to)
                .await
                .at(at)?
                .into_iter()
                .filter(|r| &r.receipt_id == receipt_id)
            {
                collected.push(CollectedLine {
                    at: r.paid_at,
                    notice_number: r.notice_number,
                    iuv: r.iuv,
                    receipt_id: r.receipt_id,
                    amount: Cents(r.amount),
                    channel: POS_CHANNEL.to_string(),
                });
            }
        }
    }
    collected.sort_by(|a, b| a.at.cmp(&b.at).then(a.receipt_id.cmp(&b.receipt_id)));
    Ok(collected)
}

/// A notice the person found at the desk can pay now: the single
/// solution of a position, or one of its installments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenNotice {
    pub iupd: String,
    pub notice_number: String,
    pub amount: Cents,
    pub due: DateTime<Utc>,
    pub debtor_name: String,
    /// The service's name (or code) as the catalogue has it.
    pub service: String,
    /// "Soluzione unica", or "Rata 2 di 3".
    pub which: String,
    pub status: PositionStatus,
}

/// The notices the person with `fiscal_code` can pay now, in the caller's
/// offices: each open position's unpaid options that the Node would
/// accept today (an installment plan lists its installments, not the
/// single solution once an installment is paid), soonest due first.
pub async fn open_notices(
    ctx: &Ctx,
    ente: &str,
    fiscal_code: &str,
) -> Result<Vec<OpenNotice>, AppError> {
    let rows = find(ctx, ente, fiscal_code).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let stored = ctx
        .store()
        .positions_by_ids(ente, &ids)
        .await
        .at(Place::new("desk.open_notices", ente, fiscal_code))?;
    let now = ctx.now();
    let mut out = Vec::new();
    for row in &rows {
        let Some(s) = stored.iter().find(|s| s.position.iupd == row.iupd) else {
            continue;
        };
        let p = &s.position;
        let installments = p.options.iter().filter(|o| o.is_partial_payment).count();
        let mut nth = 0;
        for (i, o) in p.options.iter().enumerate() {
            if o.is_partial_payment {
                nth += 1;
            }
            let Some(nav) = o.notice_number.as_ref().map(|n| n.as_str().to_string()) else {
                continue;
            };
            if crate::node::payable_fault(p, i, now, ente, &nav).is_err() {
                continue;
            }
            out.push(OpenNotice {
                iupd: p.iupd.clone(),
                notice_number: nav,
                amount: o.amount,
                due: o.due_date,
                debtor_name: p.debtor.full_name.clone(),
                service: row
                    .service_name
                    .clone()
                    .or_else(|| row.service_code.clone())
                    .unwrap_or_default(),
                which: if o.is_partial_payment {
                    format!("Rata {nth} di {installments}")
                } else {
                    "Soluzione unica".to_string()
                },
                status: row.status,
            });
        }
    }
    out.sort_by(|a, b| {
        a.due
            .cmp(&b.due)
            .then(a.notice_number.cmp(&b.notice_number))
    });
    Ok(out)
}

/// Sends notices the clerk chose among those of the person with
/// `fiscal_code` (each with the amount the clerk saw) to the terminal of
/// desk `desk`: one to five, in one card payment. A notice that is not
/// one of that person's payable notices now, or whose amount changed, is
/// refused before anything is written.
pub async fn push_open_notices(
    ctx: &Ctx,
    ente: &str,
    desk: &str,
    fiscal_code: &str,
    chosen: &[(String, Cents)],
) -> Result<crate::pos::PosSessionView, AppError> {
    let d = get(ctx, ente, desk).await?;
    let choose = |code: &'static str, text: String| {
        let mut e = AppError::invalid(code, text.clone());
        e.errors = vec![field_error("avviso", code, text)];
        e
    };
    if chosen.is_empty() {
        return Err(choose(
            "POS_NO_NOTICES",
            "scegliere almeno un avviso da pagare con la carta".into(),
        ));
    }
    if chosen.len() > crate::pos::MAX_NOTICES {
        return Err(choose(
            "POS_TOO_MANY_NOTICES",
            format!(
                "al terminale si inviano al più {} avvisi per volta: ne sono stati scelti {}",
                crate::pos::MAX_NOTICES,
                chosen.len()
            ),
        ));
    }
    let open = open_notices(ctx, ente, fiscal_code).await?;
    let fc = fiscal_code.trim().to_uppercase();
    for (nav, _) in chosen {
        if !open.iter().any(|o| &o.notice_number == nav) {
            return Err(choose(
                "POS_NOTICE_NOT_OPEN",
                format!("l'avviso {nav} non è tra gli avvisi da pagare di {fc}"),
            ));
        }
    }
    let items: Vec<(String, Option<Cents>)> =
        chosen.iter().map(|(n, a)| (n.clone(), Some(*a))).collect();
    crate::pos::push_amounts(ctx, ente, &d.code, &items).await
}

/// A POS session of desk `desk` (the desk's page that follows it).
pub async fn desk_session(
    ctx: &Ctx,
    ente: &str,
    desk: &str,
    session_id: &str,
) -> Result<crate::pos::PosSessionView, AppError> {
    let d = get(ctx, ente, desk).await?;
    match crate::pos::session(ctx, ente, session_id).await {
        Ok(s) if s.desk == d.code => Ok(s),
        Ok(_) => Err(AppError::new(
            Kind::NotFound,
            "POS_SESSION_UNKNOWN",
            format!("sessione POS {session_id} non trovata a questo sportello"),
        )),
        Err(e) => Err(e),
    }
}

/// Who gives the IUV of a position created at the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreatedIuv {
    /// The Ente's IUV coordinator, like every other position's
    /// (`TO_CREATE_PROVIDED_IUV`): the notice number is known at once.
    Ente,
    /// pagoPA's POS circuit (`TO_CREATE`).
    Circuit,
}

/// Pays the position the clerk confirmed at desk `desk` on the desk's
/// terminal, without issuing it first: pagoPA's POS circuit creates it
/// (through incasso's GPD-compatible API, where the service's taxonomy
/// places it and its accertamento follows) only when the payment starts.
/// Nothing is left to cancel when the person walks away. `token` is the
/// form's one-time token: pressing again answers the same session, never
/// a second payment.
pub async fn create_at_terminal(
    ctx: &Ctx,
    ente: &str,
    desk: &str,
    code: &str,
    token: &str,
    answers: &Answers,
    iuv: CreatedIuv,
) -> Result<crate::pos::PosSessionView, AppError> {
    if !sp::well_formed_token(token) {
        return Err(AppError::invalid(
            "BAD_TOKEN",
            "Il modulo non è valido o è scaduto: compilarlo di nuovo.",
        ));
    }
    let session_id = format!("{IUPD_PREFIX}{}", token.to_uppercase());
    let d = get(ctx, ente, desk).await?;
    let (f, accepted) = check(ctx, ente, code, answers).await?;
    if let Ok(s) = desk_session(ctx, ente, &d.code, &session_id).await {
        return Ok(s);
    }
    let at = Place::new("desk.create_at_terminal", ente, &session_id);
    let day = today(ctx);
    if ctx
        .store()
        .desk_day(ente, &d.code, &day.to_string())
        .await
        .at(at)?
        .is_some()
    {
        return Err(day_closed(day));
    }
    let e = ctx.store().get_ente(ente).await.at(at)?;
    let iban = f.service.iban.clone().or(e.iban).ok_or_else(|| {
        AppError::new(
            Kind::Unprocessable,
            "SERVICE_WITHOUT_IBAN",
            format!(
                "il servizio {code} non ha un IBAN e l'ente non ne ha uno predefinito: \
                     indicarlo nel catalogo prima di incassare al terminale"
            ),
        )
    })?;
    let new = crate::pos::NewPosition {
        description: accepted.causale.chars().take(140).collect(),
        debtor_kind: if accepted.debtor_fiscal_code.chars().count() == 11 {
            "G".into()
        } else {
            "F".into()
        },
        debtor_fiscal_code: accepted.debtor_fiscal_code.clone(),
        debtor_name: accepted.debtor_name.clone(),
        transfers: vec![crate::pos::NewTransfer {
            amount: accepted.amount,
            description: accepted.causale.chars().take(90).collect(),
            iban,
            category: f.service.taxonomy_code.clone(),
        }],
    };
    crate::pos::push_new_as(
        ctx,
        ente,
        &d.code,
        &[new],
        iuv == CreatedIuv::Ente,
        Some(session_id),
    )
    .await
}

/// The desk's POS terminal, when it has an active one and incasso talks
/// to a POS gateway.
pub async fn terminal(
    ctx: &Ctx,
    ente: &str,
    desk: &str,
) -> Result<Option<crate::pos::Terminal>, AppError> {
    if ctx.settings().pos.is_none() {
        return Ok(None);
    }
    Ok(crate::pos::terminals(ctx, ente)
        .await?
        .into_iter()
        .find(|t| t.active && t.desk.as_deref() == Some(desk)))
}

/// Sends the notice of a position issued at desk `desk` to that desk's
/// POS terminal, for its amount: the citizen pays it by card there.
pub async fn push_to_terminal(
    ctx: &Ctx,
    ente: &str,
    desk: &str,
    iupd: &str,
) -> Result<crate::pos::PosSessionView, AppError> {
    let i = issued(ctx, ente, iupd).await?;
    if i.desk.code != desk {
        return Err(not_issued_here());
    }
    crate::pos::push_amounts(
        ctx,
        ente,
        desk,
        &[(i.notice_number.clone(), Some(i.amount))],
    )
    .await
}

/// The newest of today's POS sessions of desk `desk` that holds notice
/// `nav`, if any: what the terminal is doing with it.
pub async fn terminal_session(
    ctx: &Ctx,
    ente: &str,
    desk: &str,
    nav: &str,
) -> Result<Option<crate::pos::PosSessionView>, AppError> {
    let sessions = crate::pos::sessions_of_desk(ctx, ente, desk, today(ctx)).await?;
    Ok(sessions
        .into_iter()
        .find(|s| s.notices.iter().any(|(n, _)| n == nav)))
}

/// The desk's day `day`: frozen as it was closed, or as it is now.
pub async fn day(ctx: &Ctx, ente: &str, desk: &str, day: NaiveDate) -> Result<DayReport, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Read)?;
    let d = get(ctx, ente, desk).await?;
    let at = Place::new("desk.day", ente, desk);
    match ctx
        .store()
        .desk_day(ente, &d.code, &day.to_string())
        .await
        .at(at)?
    {
        Some(closed) => frozen(&closed, &at),
        None => live_report(ctx, ente, &d, day).await,
    }
}

fn frozen(closed: &DeskDayRecord, at: &Place<'_>) -> Result<DayReport, AppError> {
    let mut r: DayReport =
        serde_json::from_str(&closed.report).map_err(|e| AppError::internal(at, &e))?;
    r.closed = Some(Closing {
        by: closed.closed_by.clone(),
        at: closed.closed_at,
    });
    Ok(r)
}

/// Closes the desk's day `day` (today or earlier): its report is frozen
/// as it is now. Closing a closed day answers the first closing.
pub async fn close_day(
    ctx: &Ctx,
    ente: &str,
    desk: &str,
    day: NaiveDate,
) -> Result<DayReport, AppError> {
    let object = format!("{desk}/{day}");
    crate::audit::audited(ctx, Some(ente), "desk.close_day", &object, async {
        ctx.caller.require(ente, Area::Positions, Access::Write)?;
        let d = get(ctx, ente, desk).await?;
        if day > today(ctx) {
            return Err(AppError::invalid(
                "FUTURE_DAY",
                "non si può chiudere una giornata che non è ancora cominciata",
            ));
        }
        let at = Place::new("desk.close_day", ente, desk);
        if let Some(closed) = ctx
            .store()
            .desk_day(ente, &d.code, &day.to_string())
            .await
            .at(at)?
        {
            return frozen(&closed, &at);
        }
        let report = live_report(ctx, ente, &d, day).await?;
        let json = serde_json::to_string(&report).map_err(|e| AppError::internal(&at, &e))?;
        let (closed, _first) = ctx
            .store()
            .close_desk_day(&DeskDayRecord {
                ente: ente.to_string(),
                desk: d.code.clone(),
                day: day.to_string(),
                closed_by: operator_of(ctx),
                closed_at: ctx.now(),
                issued_count: report.issued.len() as i64,
                issued_total: report.issued_total.0,
                collected_count: report.collected.len() as i64,
                collected_total: report.collected_total.0,
                report: json,
            })
            .await
            .at(at)?;
        frozen(&closed, &at)
    })
    .await
}

/// The day's report as one sheet (CSV, XLSX): the issued positions, the
/// payments collected, then the totals.
pub fn day_sheet(r: &DayReport) -> Sheet {
    let mut s = Sheet::new(
        format!("Sportello {} {}", r.desk, r.day.format("%d-%m-%Y")),
        &[
            "Voce",
            "Data e ora",
            "Operatore o canale",
            "Codice avviso",
            "Riferimento",
            "Servizio",
            "Debitore",
            "Codice fiscale",
            "Importo",
            "Stato",
        ],
    );
    for l in &r.issued {
        s.push(vec![
            Cell::text("Emessa"),
            Cell::DateTime(l.at),
            Cell::text(&l.operator),
            Cell::text(&l.notice_number),
            Cell::text(&l.iupd),
            Cell::text(&l.service_code),
            Cell::text(&l.debtor_name),
            Cell::text(&l.debtor_fiscal_code),
            Cell::Money(l.amount),
            Cell::text(&l.state),
        ]);
    }
    for l in &r.collected {
        s.push(vec![
            Cell::text("Incassata"),
            Cell::DateTime(l.at),
            Cell::text(&l.channel),
            Cell::text(&l.notice_number),
            Cell::text(&l.receipt_id),
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Money(l.amount),
            Cell::text("Pagato"),
        ]);
    }
    let total = |label: &str, n: usize, c: Cents| {
        vec![
            Cell::text(label),
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Int(n as i64),
            Cell::Money(c),
            Cell::Empty,
        ]
    };
    s.push(total("Totale emesso", r.issued.len(), r.issued_total));
    s.push(total(
        "Totale incassato",
        r.collected.len(),
        r.collected_total,
    ));
    let pos_n = r
        .collected
        .iter()
        .filter(|l| l.channel == POS_CHANNEL)
        .count();
    s.push(total("di cui al POS dello sportello", pos_n, r.pos_total));
    s
}
