//! Debt positions: create, read, update, publish, invalidate, cancel, mark
//! paid outside pagoPA, list, and move a transfer's IBAN; and the back
//! office's archive of them: search, export, a position's page and its
//! single entry ([`Entry`]).
//!
//! Rights: every use case states the Positions area (reading or writing);
//! an office operator or counter clerk reaches only the positions of their
//! offices, and another office's position is "not found" to them, as
//! another Ente's is. API keys pass as they always did (`Caller::require`
//! treats them as the Ente check did).

use crate::Ctx;
use crate::error::{AppError, At, Kind, Place};
use crate::identity::Caller;
use chrono::{DateTime, Utc};
use incasso_core::access::{Access, Area};
use incasso_core::position::{DebtPosition, TransitionError};
use incasso_store::{ListFilter, Page, Placement, StoreError, StoredPosition};

mod archive;
mod entry;
pub use archive::{
    Detail, Found, PAGE_SIZE, STATUS_CHOICES, Search, SearchChoices, StatusChoice, detail, export,
    search, search_choices, sheet, status_label,
};
pub use entry::{
    Beneficiary, Choices, ENTRY_FIELDS, Entry, MAX_INSTALLMENTS, amend, enter, entry_choices,
    entry_of,
};

/// The offices the caller is limited to, `None` when they see them all.
pub(crate) fn office_scope(ctx: &Ctx) -> Option<Vec<String>> {
    match &ctx.caller {
        Caller::Operator(o) => o.rights.office_scope().map(<[String]>::to_vec),
        _ => None,
    }
}

/// Whether the caller sees data of `office`.
pub(crate) fn sees_office(ctx: &Ctx, office: Option<&str>) -> bool {
    match &ctx.caller {
        Caller::Operator(o) => o.rights.sees_office(office),
        _ => true,
    }
}

/// A position outside the caller's offices is, to them, not there: the
/// same answer as a position that does not exist.
fn out_of_scope() -> AppError {
    AppError::new(
        Kind::NotFound,
        "NOT_FOUND",
        "posizione debitoria non trovata",
    )
}

/// `stored` if the caller sees its office.
pub(crate) fn in_scope(ctx: &Ctx, stored: StoredPosition) -> Result<StoredPosition, AppError> {
    if sees_office(ctx, stored.placement.office.as_deref()) {
        Ok(stored)
    } else {
        Err(out_of_scope())
    }
}

/// Work on many positions at once, or on the Ente's whole archive, is for
/// callers who see every office.
fn require_every_office(ctx: &Ctx) -> Result<(), AppError> {
    if office_scope(ctx).is_some() {
        return Err(AppError::new(
            Kind::Forbidden,
            "FORBIDDEN_SCOPE",
            "l'operazione riguarda posizioni di tutti gli uffici: è riservata a chi li vede tutti",
        ));
    }
    Ok(())
}

/// The position `iupd`, checked to be in the caller's offices (a
/// writer's check before the write).
async fn scoped(
    ctx: &Ctx,
    ente: &str,
    iupd: &str,
    use_case: &'static str,
) -> Result<StoredPosition, AppError> {
    let stored = ctx
        .store()
        .get_position(ente, iupd)
        .await
        .at(Place::new(use_case, ente, iupd))?;
    in_scope(ctx, stored)
}

/// The position of notice `nav`, checked to be in the caller's offices.
async fn scoped_notice(
    ctx: &Ctx,
    ente: &str,
    nav: &str,
    use_case: &'static str,
) -> Result<(), AppError> {
    if office_scope(ctx).is_none() {
        return Ok(());
    }
    let (stored, _) = ctx
        .store()
        .find_by_notice_number(ente, nav)
        .await
        .at(Place::new(use_case, ente, nav))?;
    in_scope(ctx, stored).map(|_| ())
}

/// `value`, once the write that made it would survive a power cut
/// (`Store::durable`): the answer tells the Ente's system that the
/// position is kept, with IUVs it may print at once.
async fn kept<T>(ctx: &Ctx, at: Place<'_>, value: T) -> Result<T, AppError> {
    ctx.store().durable().await.at(at)?;
    Ok(value)
}

/// Creates a position (published at once when `publish`). Core validates
/// it; the store assigns what the application left out (IUVs, notice
/// numbers).
pub async fn create(
    ctx: &Ctx,
    ente: &str,
    position: DebtPosition,
    publish: bool,
) -> Result<StoredPosition, AppError> {
    let iupd = position.iupd.clone();
    crate::audit::audited(ctx, Some(ente), "position.create", &iupd, async {
        ctx.caller.require(ente, Area::Positions, Access::Write)?;
        let iupd = position.iupd.clone();
        let at = Place::new("positions.create", ente, &iupd);
        // An office operator creates only in their offices: the place the
        // content says must be one of them.
        let placement = match office_scope(ctx) {
            None => None,
            Some(_) => {
                let p = ctx.store().placement_of(ente, &position).await.at(at)?;
                if !sees_office(ctx, p.office.as_deref()) {
                    return Err(AppError::new(
                        Kind::Forbidden,
                        "FORBIDDEN_SCOPE",
                        "la posizione non è di un ufficio dell'operatore",
                    ));
                }
                Some(p)
            }
        };
        let created = ctx
            .store()
            .create_position_placed(ente, position, placement, ctx.now(), publish)
            .await
            .at(at)?;
        kept(ctx, at, created).await
    })
    .await
}

/// The most positions one call on many may carry, as GPD's v2 takes them.
pub const MANY_LIMIT: usize = 100;

fn check_many(count: usize) -> Result<(), AppError> {
    if count == 0 {
        return Err(AppError::invalid(
            "EMPTY_LIST",
            "paymentPositions: almeno una posizione",
        ));
    }
    if count > MANY_LIMIT {
        return Err(AppError::invalid(
            "TOO_MANY",
            format!(
                "paymentPositions: al più {MANY_LIMIT} posizioni per chiamata, ricevute {count}"
            ),
        ));
    }
    Ok(())
}

/// Creates many positions at once (GPD v2): all of them, or none when any
/// is refused; the error names the position.
pub async fn create_many(
    ctx: &Ctx,
    ente: &str,
    positions: Vec<DebtPosition>,
    publish: bool,
) -> Result<Vec<StoredPosition>, AppError> {
    crate::audit::audited(
        ctx,
        Some(ente),
        "position.create_many",
        &format!("{} posizioni", positions.len()),
        async {
            ctx.caller.require(ente, Area::Positions, Access::Write)?;
            require_every_office(ctx)?;
            check_many(positions.len())?;
            let at = Place::new("positions.create_many", ente, "");
            let created = ctx
                .store()
                .create_positions(ente, positions, ctx.now(), publish, None)
                .await
                .at(at)?;
            kept(ctx, at, created).await
        },
    )
    .await
}

/// Replaces many positions at once (GPD v2's update): all or none.
pub async fn update_many(
    ctx: &Ctx,
    ente: &str,
    positions: Vec<DebtPosition>,
    publish: bool,
) -> Result<Vec<StoredPosition>, AppError> {
    crate::audit::audited(
        ctx,
        Some(ente),
        "position.update_many",
        &format!("{} posizioni", positions.len()),
        async {
            ctx.caller.require(ente, Area::Positions, Access::Write)?;
            require_every_office(ctx)?;
            check_many(positions.len())?;
            for (i, p) in positions.iter().enumerate() {
                check_iupd(&format!("paymentPositions[{i}].iupd"), &p.iupd)?;
            }
            let at = Place::new("positions.update_many", ente, "");
            let replaced = ctx
                .store()
                .replace_positions(ente, positions, ctx.now(), publish, None)
                .await
                .at(at)?;
            kept(ctx, at, replaced).await
        },
    )
    .await
}

/// The most positions one delete on many may name, as GPD's v2 takes them.
pub const DELETE_MANY_LIMIT: usize = 20;

/// Deletes many positions at once (GPD v2): all or none.
pub async fn delete_many(ctx: &Ctx, ente: &str, iupds: &[String]) -> Result<(), AppError> {
    crate::audit::audited(ctx, Some(ente), "position.delete_many", &iupds.join(","), async {
        ctx.caller.require(ente, Area::Positions, Access::Write)?;
        require_every_office(ctx)?;
        if iupds.is_empty() || iupds.len() > DELETE_MANY_LIMIT {
            return Err(AppError::invalid(
                "TOO_MANY",
                format!(
                    "paymentPositionIUPDs: da 1 a {DELETE_MANY_LIMIT} iupd per chiamata, ricevuti {}",
                    iupds.len()
                ),
            ));
        }
        let at = Place::new("positions.delete_many", ente, "");
        ctx.store()
            .delete_positions(ente, iupds, None)
            .await
            .at(at)
            .map_err(|mut e| {
                // The request names its list paymentPositionIUPDs.
                e.detail = e
                    .detail
                    .replacen("paymentPositions[", "paymentPositionIUPDs[", 1);
                e
            })?;
        kept(ctx, at, ()).await
    })
    .await
}

/// An iupd is a key of the URL: one GPD could not store is refused (400),
/// before it is looked for.
fn check_iupd(field: &str, iupd: &str) -> Result<(), AppError> {
    if incasso_core::position::is_valid_iupd(iupd) {
        Ok(())
    } else {
        Err(AppError::invalid(
            "BAD_FORMAT",
            format!(
                "{field}: iupd non valido '{iupd}' (da 1 a 100 tra lettere, cifre, spazi, _ * -)"
            ),
        ))
    }
}

pub async fn get(ctx: &Ctx, ente: &str, iupd: &str) -> Result<StoredPosition, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Read)?;
    scoped(ctx, ente, iupd, "positions.get").await
}

/// Replaces the position `iupd` with `position`, whose own iupd must agree.
pub async fn update(
    ctx: &Ctx,
    ente: &str,
    iupd: &str,
    position: DebtPosition,
    publish: bool,
) -> Result<StoredPosition, AppError> {
    crate::audit::audited(ctx, Some(ente), "position.update", iupd, async {
        ctx.caller.require(ente, Area::Positions, Access::Write)?;
        check_iupd("iupd", &position.iupd)?;
        if position.iupd != iupd {
            return Err(AppError::invalid(
                "IUPD_MISMATCH",
                "l'iupd nel corpo è diverso da quello nel percorso",
            ));
        }
        let at = Place::new("positions.update", ente, iupd);
        let placement = match office_scope(ctx) {
            None => None,
            Some(_) => {
                let current = scoped(ctx, ente, iupd, "positions.update").await?;
                // It stays in the operator's offices whatever it now says.
                let derived = ctx.store().placement_of(ente, &position).await.at(at)?;
                let p = Placement {
                    service: derived.service.or(current.placement.service),
                    office: derived.office.or(current.placement.office),
                };
                if !sees_office(ctx, p.office.as_deref()) {
                    return Err(AppError::new(
                        Kind::Forbidden,
                        "FORBIDDEN_SCOPE",
                        "la posizione non resterebbe in un ufficio dell'operatore",
                    ));
                }
                Some(p)
            }
        };
        let replaced = ctx
            .store()
            .replace_position_placed(ente, iupd, position, placement, ctx.now(), publish)
            .await
            .at(at)?;
        kept(ctx, at, replaced).await
    })
    .await
}

pub async fn delete(ctx: &Ctx, ente: &str, iupd: &str) -> Result<(), AppError> {
    crate::audit::audited(ctx, Some(ente), "position.delete", iupd, async {
        ctx.caller.require(ente, Area::Positions, Access::Write)?;
        if office_scope(ctx).is_some() {
            scoped(ctx, ente, iupd, "positions.delete").await?;
        }
        let at = Place::new("positions.delete", ente, iupd);
        ctx.store().delete_position(ente, iupd).await.at(at)?;
        kept(ctx, at, ()).await
    })
    .await
}

pub async fn publish(ctx: &Ctx, ente: &str, iupd: &str) -> Result<StoredPosition, AppError> {
    crate::audit::audited(ctx, Some(ente), "position.publish", iupd, async {
        ctx.caller.require(ente, Area::Positions, Access::Write)?;
        if office_scope(ctx).is_some() {
            scoped(ctx, ente, iupd, "positions.publish").await?;
        }
        let at = Place::new("positions.publish", ente, iupd);
        let published = ctx
            .store()
            .publish_position(ente, iupd, ctx.now())
            .await
            .at(at)?;
        kept(ctx, at, published).await
    })
    .await
}

pub async fn invalidate(ctx: &Ctx, ente: &str, iupd: &str) -> Result<StoredPosition, AppError> {
    crate::audit::audited(ctx, Some(ente), "position.invalidate", iupd, async {
        ctx.caller.require(ente, Area::Positions, Access::Write)?;
        if office_scope(ctx).is_some() {
            scoped(ctx, ente, iupd, "positions.invalidate").await?;
        }
        let at = Place::new("positions.invalidate", ente, iupd);
        let invalidated = ctx
            .store()
            .invalidate_position(ente, iupd, ctx.now())
            .await
            .at(at)?;
        kept(ctx, at, invalidated).await
    })
    .await
}

/// Marks a notice paid outside pagoPA (at the counter, by bank transfer).
/// As GPD: a notice already paid is a conflict, one in a state that cannot
/// be paid is unprocessable. Answers the position and the option's index.
pub async fn mark_paid(
    ctx: &Ctx,
    ente: &str,
    nav: &str,
    paid_at: Option<DateTime<Utc>>,
) -> Result<(StoredPosition, usize), AppError> {
    crate::audit::audited(ctx, Some(ente), "position.mark_paid", nav, async {
        ctx.caller.require(ente, Area::Positions, Access::Write)?;
        scoped_notice(ctx, ente, nav, "positions.mark_paid").await?;
        let now = ctx.now();
        let paid_at = paid_at.unwrap_or(now);
        if paid_at > now {
            return Err(AppError::invalid(
                "DATE_IN_FUTURE",
                "paymentDate: la data di pagamento non può essere futura",
            ));
        }
        match ctx.store().mark_option_paid(ente, nav, paid_at, now).await {
            Err(StoreError::Transition(t)) => {
                let kind = match t {
                    TransitionError::AlreadyPaid => Kind::Conflict,
                    _ => Kind::Unprocessable,
                };
                Err(AppError::new(kind, t.code(), t.to_string()))
            }
            other => other.at(Place::new("positions.mark_paid", ente, nav)),
        }
    })
    .await
}

/// The payment option with notice number `nav` and its position, as SEND
/// reads it through GPD: an option of a position not yet valid (a draft,
/// or published with a validity date still to come) is not found yet.
pub async fn option_by_notice(
    ctx: &Ctx,
    ente: &str,
    nav: &str,
) -> Result<(StoredPosition, usize), AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Read)?;
    let (stored, index) = ctx
        .store()
        .position_of_notice(ente, nav)
        .await
        .at(Place::new("positions.option_by_notice", ente, nav))?;
    let stored = in_scope(ctx, stored)?;
    let status = stored.position.effective_status(ctx.now());
    if matches!(
        status,
        incasso_core::position::PositionStatus::Draft
            | incasso_core::position::PositionStatus::Published
    ) {
        return Err(AppError::new(
            Kind::NotFound,
            "NOT_FOUND",
            format!("avviso {nav}: la posizione non è ancora valida"),
        ));
    }
    Ok((stored, index))
}

/// Sets the notification fee of the option `nav` (SEND): the amount the
/// debtor owes grows by it. Only an unpaid option takes one (422).
pub async fn set_notification_fee(
    ctx: &Ctx,
    ente: &str,
    nav: &str,
    fee: i64,
) -> Result<(StoredPosition, usize), AppError> {
    crate::audit::audited(ctx, Some(ente), "position.notification_fee", nav, async {
        ctx.caller.require(ente, Area::Positions, Access::Write)?;
        scoped_notice(ctx, ente, nav, "positions.set_notification_fee").await?;
        if fee < 0 {
            return Err(AppError::invalid(
                "BAD_NOTIFICATION_FEE",
                "notificationFee: non può essere negativo",
            ));
        }
        ctx.store()
            .set_notification_fee(ente, nav, incasso_core::Cents(fee), ctx.now())
            .await
            .at(Place::new("positions.set_notification_fee", ente, nav))
    })
    .await
}

pub async fn list(
    ctx: &Ctx,
    ente: &str,
    filter: &ListFilter,
) -> Result<Page<StoredPosition>, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Read)?;
    // GPD's list knows no offices: the back office's search does.
    require_every_office(ctx)?;
    ctx.store()
        .list_positions(ente, filter)
        .await
        .at(Place::new("positions.list", ente, ""))
}

/// Moves up to `limit` transfers from `old_iban` to `new_iban`; answers how
/// many moved.
pub async fn replace_iban(
    ctx: &Ctx,
    ente: &str,
    old_iban: &str,
    new_iban: &str,
    limit: u32,
) -> Result<u64, AppError> {
    crate::audit::audited(ctx, Some(ente), "position.replace_iban", old_iban, async {
        ctx.caller.require(ente, Area::Positions, Access::Write)?;
        require_every_office(ctx)?;
        if !(1..=1000).contains(&limit) {
            return Err(AppError::invalid("BAD_LIMIT", "limit: da 1 a 1000"));
        }
        // incasso stores no invalid IBAN, so one matches no transfer: nothing
        // to move, as GPD answers (200, none updated), whatever the new one.
        if incasso_core::codes::check_iban(old_iban).is_err() {
            return Ok(0);
        }
        ctx.store()
            .replace_transfer_iban(ente, old_iban, new_iban, limit)
            .await
            .at(Place::new("positions.replace_iban", ente, ""))
    })
    .await
}
