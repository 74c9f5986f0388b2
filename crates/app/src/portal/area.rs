//! The citizen's personal area: the bacheca of every position owed by the
//! signed-in person's fiscal code at any Ente of the intermediary (not only
//! the Ente whose portal they are on), what is still to pay and what has
//! been paid, the notice of each option and the receipt of each payment.
//!
//! Only a signed-in citizen ([`crate::Caller::Citizen`]) calls these, and
//! only about their own fiscal code: a notice or a receipt of somebody
//! else gets the same answer as one that does not exist.

use crate::Ctx;
use crate::error::{AppError, At, Kind, Place};
use crate::identity::CitizenIdentity;
use chrono::{DateTime, Utc};
use incasso_core::Cents;
use incasso_core::position::{OptionStatus, PositionStatus};
use incasso_notice::Language;
use incasso_store::{DebtorSection, StoredPosition};
use std::collections::HashMap;

/// Positions on one page of each section.
pub const PAGE_SIZE: u32 = 10;

/// What the person reads of a position's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AreaStatus {
    /// Published and payable.
    ToPay,
    /// Published, payable from a later date.
    NotYetPayable,
    /// Past its last due date: no longer payable online.
    Expired,
    /// An installment or more paid, others still due.
    PartiallyPaid,
    /// Wholly paid.
    Paid,
}

/// One payment option of a position in the area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AreaOption {
    pub iuv: String,
    pub notice_number: String,
    pub description: String,
    pub amount: Cents,
    pub due_date: DateTime<Utc>,
    /// One installment of several (else the single solution).
    pub installment: bool,
    pub paid: bool,
    pub payment_date: Option<DateTime<Utc>>,
    /// May be paid now (put in the cart).
    pub payable: bool,
    /// May be printed now (a notice exists for an option of a position
    /// still open).
    pub printable: bool,
    /// A receipt of its payment is kept: the quietanza can be downloaded.
    pub has_receipt: bool,
}

/// One position of the area, with its Ente.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AreaPosition {
    pub ente: String,
    pub ente_name: String,
    pub iupd: String,
    pub status: AreaStatus,
    /// What the position is for: its first option's description.
    pub description: String,
    pub options: Vec<AreaOption>,
}

/// One page of a section of the bacheca.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AreaSection {
    pub items: Vec<AreaPosition>,
    /// Zero-based.
    pub page: u32,
    pub pages: u32,
    pub total: u64,
}

/// The bacheca: to pay, and paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bacheca {
    pub citizen: CitizenIdentity,
    pub open: AreaSection,
    pub paid: AreaSection,
}

/// The signed-in citizen, or the refusal that sends them to sign in.
fn me(ctx: &Ctx) -> Result<&CitizenIdentity, AppError> {
    ctx.caller.citizen().ok_or_else(|| {
        AppError::new(
            Kind::Unauthenticated,
            "SIGN_IN_REQUIRED",
            "per l'area personale occorre accedere con SPID o CIE",
        )
    })
}

/// What is not the person's: the answer of what does not exist.
fn not_found(what: &'static str) -> AppError {
    AppError::new(
        Kind::NotFound,
        "NOT_FOUND",
        format!("{what} non trovato tra quelli intestati a chi ha effettuato l'accesso"),
    )
}

fn status_of(p: &StoredPosition, now: DateTime<Utc>) -> AreaStatus {
    match p.position.effective_status(now) {
        PositionStatus::Valid => AreaStatus::ToPay,
        PositionStatus::Published | PositionStatus::Draft => AreaStatus::NotYetPayable,
        PositionStatus::Expired | PositionStatus::Invalid => AreaStatus::Expired,
        PositionStatus::PartiallyPaid => AreaStatus::PartiallyPaid,
        PositionStatus::Paid | PositionStatus::Reported => AreaStatus::Paid,
    }
}

/// The bacheca's page `open_page` of positions to pay and `paid_page` of
/// positions paid (both zero-based).
pub async fn bacheca(ctx: &Ctx, open_page: u32, paid_page: u32) -> Result<Bacheca, AppError> {
    let me = me(ctx)?.clone();
    let mut names = HashMap::new();
    let open = section(ctx, &me, DebtorSection::Open, open_page, &mut names).await?;
    let paid = section(ctx, &me, DebtorSection::Paid, paid_page, &mut names).await?;
    Ok(Bacheca {
        citizen: me,
        open,
        paid,
    })
}

async fn section(
    ctx: &Ctx,
    me: &CitizenIdentity,
    which: DebtorSection,
    page: u32,
    names: &mut HashMap<String, String>,
) -> Result<AreaSection, AppError> {
    let at = Place::new("portal.area", "", "");
    let now = ctx.now();
    let (found, total) = ctx
        .store()
        .positions_of_debtor(
            &me.fiscal_code,
            which,
            u64::from(page) * u64::from(PAGE_SIZE),
            PAGE_SIZE,
        )
        .await
        .at(at)?;
    let mut items = Vec::with_capacity(found.len());
    for (ente, stored) in found {
        let ente_name = match names.get(&ente) {
            Some(n) => n.clone(),
            None => {
                let n = ctx.store().get_ente(&ente).await.at(at)?.name;
                names.insert(ente.clone(), n.clone());
                n
            }
        };
        let status = status_of(&stored, now);
        let p = &stored.position;
        let mut options = Vec::with_capacity(p.options.len());
        for (index, o) in p.options.iter().enumerate() {
            let (Some(iuv), Some(nav)) = (&o.iuv, &o.notice_number) else {
                continue;
            };
            let paid = o.status != OptionStatus::Unpaid;
            // The open section lists what may still be paid; the paid one
            // what was.
            let wanted = match which {
                DebtorSection::Open => !paid,
                DebtorSection::Paid => paid,
            };
            // Once an installment is paid, the single solution is no
            // longer a way to pay: not shown as one.
            let superseded =
                which == DebtorSection::Open && !o.is_partial_payment && p.has_paid_option();
            if !wanted || superseded {
                continue;
            }
            let payable = crate::node::payable_fault(p, index, now, &ente, nav.as_str()).is_ok();
            let has_receipt = paid && ctx.store().has_receipt(&ente, iuv.as_str()).await.at(at)?;
            options.push(AreaOption {
                iuv: iuv.as_str().to_string(),
                notice_number: nav.as_str().to_string(),
                description: o.description.clone(),
                amount: o.amount,
                due_date: o.due_date,
                installment: o.is_partial_payment,
                paid,
                payment_date: o.payment_date,
                payable,
                printable: payable,
                has_receipt,
            });
        }
        items.push(AreaPosition {
            description: p
                .options
                .first()
                .map(|o| o.description.clone())
                .unwrap_or_default(),
            ente,
            ente_name,
            iupd: p.iupd.clone(),
            status,
            options,
        });
    }
    Ok(AreaSection {
        items,
        page,
        pages: (total.div_ceil(u64::from(PAGE_SIZE))) as u32,
        total,
    })
}

/// The person's own position of notice `nav` at `ente`; anyone else's is
/// not found.
async fn own_notice(ctx: &Ctx, ente: &str, nav: &str) -> Result<(StoredPosition, usize), AppError> {
    let me = me(ctx)?;
    let at = Place::new("portal.area.notice", ente, nav);
    let found = match ctx.store().find_by_notice_number(ente, nav).await {
        Ok(found) => found,
        Err(incasso_store::StoreError::NotFound(_)) => return Err(not_found("avviso")),
        Err(e) => return Err(crate::error::from_store(e, &at)),
    };
    let p = &found.0.position;
    if !p.debtor.fiscal_code.eq_ignore_ascii_case(&me.fiscal_code)
        || p.effective_status(ctx.now()) == PositionStatus::Draft
    {
        return Err(not_found("avviso"));
    }
    Ok(found)
}

/// The notice `nav` at `ente` is the signed-in person's own (and
/// published): what the area checks before it puts one in the cart.
pub async fn check_own_notice(ctx: &Ctx, ente: &str, nav: &str) -> Result<(), AppError> {
    own_notice(ctx, ente, nav).await.map(|_| ())
}

/// The notice PDF of the person's own notice `nav` at `ente` (the whole
/// notice of its position, the option's page first as the back office
/// prints one notice), in Italian or, when `german`, the bilingual
/// Italian and German notice.
pub async fn notice_pdf(
    ctx: &Ctx,
    ente: &str,
    nav: &str,
    german: bool,
) -> Result<Vec<u8>, AppError> {
    let lang = if german {
        Language::ItalianGerman
    } else {
        Language::Italian
    };
    let (stored, _) = own_notice(ctx, ente, nav).await?;
    let at = Place::new("portal.area.notice", ente, nav);
    let ente_data = ctx.store().get_ente(ente).await.at(at)?;
    let logo = ctx.store().logo(ente).await.at(at)?.map(|(_, b)| b);
    let notice = incasso_notice::position::from_position(
        &ente_data,
        logo,
        &stored.position,
        Some(nav),
        lang,
        ctx.now(),
    )
    .map_err(|r| {
        let kind = match r {
            incasso_notice::position::Refusal::UnknownNotice => Kind::NotFound,
            _ => Kind::Conflict,
        };
        AppError::new(kind, r.code(), r.to_string())
    })?;
    tokio::task::spawn_blocking(move || {
        incasso_notice::render_packed(&notice, incasso_notice::Packing::Quick)
    })
    .await
    .map_err(|e| AppError::internal(&at, &e))?
    .map_err(|e| AppError::internal(&at, &e))
}

/// The quietanza (the receipt's PDF) of the person's own payment of `iuv`
/// at `ente`.
pub async fn receipt_pdf(ctx: &Ctx, ente: &str, iuv: &str) -> Result<Vec<u8>, AppError> {
    let me = me(ctx)?;
    let at = Place::new("portal.area.receipt", ente, iuv);
    let debtor = ctx.store().debtor_of_iuv(ente, iuv).await.at(at)?;
    if !debtor.is_some_and(|d| d.eq_ignore_ascii_case(&me.fiscal_code)) {
        return Err(not_found("pagamento"));
    }
    crate::portal::receipts::quietanza_pdf(ctx, ente, iuv).await
}
