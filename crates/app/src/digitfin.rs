//! DigitFIN's use cases: take in reporting flows and treasury files, run
//! the matching, read flows, breakdowns over accertamenti, anomalies and
//! classified lines, reconcile a transfer an accounting application read
//! itself, and propose the OPI reversale of a matched sospeso. The work is
//! [`crate::reconcile`]'s; here each door's call is checked and placed.

use crate::Ctx;
use crate::audit::audited;
use crate::error::{AppError, At, Kind, Place};
use crate::paging::{self, Page};
use crate::reconcile::{
    self, BreakdownOf, ClassifiedLine, FetchReport, ReconError, ReconciliationAnswer,
    ReconciliationRequest, RequestError, Summary, TreasurySettings,
};
use incasso_core::access::{Access, Area};
use incasso_recon::breakdown::Breakdown;
use incasso_store::reporting::{FlowQuery, FlowRow, ManualTie, MovementQuery, MovementRow};
use incasso_store::{AccountedLine, AnomalyRecord, FlowIntake, LinesOf, StoredFlow};

/// A reconciliation failure as every door shows it; the store's own
/// failures are logged with `at`.
fn recon(e: ReconError, at: &Place<'_>) -> AppError {
    let code = e.code();
    let kind = match &e {
        ReconError::Flow(_) | ReconError::Treasury(_) | ReconError::Tie(_) => Kind::Invalid,
        ReconError::UnknownEnte(_)
        | ReconError::UnknownMovement(_)
        | ReconError::UnknownFlow(_)
        | ReconError::NotTied(_) => Kind::NotFound,
        ReconError::OtherEnte { .. }
        | ReconError::NotMatched(_)
        | ReconError::NotTieable { .. }
        | ReconError::FlowTaken { .. }
        | ReconError::NoTreasurySettings
        | ReconError::NoConnection
        | ReconError::Unattributed(_) => Kind::Conflict,
        ReconError::Node(_) => Kind::Unavailable,
        ReconError::Reversale(_) => Kind::Unprocessable,
        ReconError::Internal(_) | ReconError::Store(_) => Kind::Internal,
    };
    if let ReconError::Store(s) = e {
        return crate::error::from_store(s, at);
    }
    AppError::new(kind, code, e.to_string())
}

trait ReconAt<T> {
    fn recon_at(self, at: Place<'_>) -> Result<T, AppError>;
}

impl<T> ReconAt<T> for Result<T, ReconError> {
    fn recon_at(self, at: Place<'_>) -> Result<T, AppError> {
        self.map_err(|e| recon(e, &at))
    }
}

/// Takes in one reporting flow (FdR XML); answers its id and what became of
/// it.
pub async fn take_flow(
    ctx: &Ctx,
    ente: &str,
    bytes: &[u8],
) -> Result<(String, FlowIntake), AppError> {
    audited(ctx, Some(ente), "flow.take", "flusso", async {
        ctx.caller.require(ente, Area::Reporting, Access::Write)?;
        reconcile::take_flow_named(ctx.store(), ente, bytes, ctx.now())
            .await
            .recon_at(Place::new("flows.take", ente, ""))
    })
    .await
}

/// A page of the current version of each of the Ente's flows, by flow id.
pub async fn list_flows(
    ctx: &Ctx,
    ente: &str,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<StoredFlow>, AppError> {
    ctx.caller.require(ente, Area::Reporting, Access::Read)?;
    let limit = paging::limit(limit, 1000, 10_000)?;
    let after = cursor.map(|c| paging::decode(c, 1)).transpose()?;
    let after = after.as_ref().map_or("", |a| a[0].as_str());
    let items = ctx
        .store()
        .current_flows_after(ente, after, i64::from(limit) + 1)
        .await
        .at(Place::new("flows.list", ente, ""))?;
    Ok(paging::page(items, limit, |f| vec![f.flow_id.clone()]))
}

/// The payments a flow reports.
pub async fn flow_payments(
    ctx: &Ctx,
    ente: &str,
    flow_id: &str,
) -> Result<Vec<AccountedLine>, AppError> {
    ctx.caller.require(ente, Area::Reporting, Access::Read)?;
    let lines = ctx
        .store()
        .accounted_lines(ente, LinesOf::Flow(flow_id))
        .await
        .at(Place::new("flows.payments", ente, flow_id))?;
    if lines.is_empty() {
        return Err(AppError::new(
            Kind::NotFound,
            "FLOW_UNKNOWN",
            format!("nessun flusso {flow_id}"),
        ));
    }
    Ok(lines)
}

/// Takes in a treasury file: OPI or camt XML, or with `layout` a bank's
/// own file through a Digit BUS treasury layout. Answers how many movements
/// were new.
pub async fn take_treasury(
    ctx: &Ctx,
    ente: &str,
    layout: Option<&str>,
    bytes: Vec<u8>,
) -> Result<usize, AppError> {
    let object = layout.unwrap_or("OPI/camt");
    audited(ctx, Some(ente), "treasury.take", object, async {
        ctx.caller.require(ente, Area::Reporting, Access::Write)?;
        let at = Place::new("treasury.take", ente, layout.unwrap_or(""));
        match layout {
            Some(name) => {
                let layout = crate::supply::resolve_layout(ctx.store(), ente, name).await?;
                reconcile::take_treasury_with_layout(ctx.store(), ente, &layout, bytes, ctx.now())
                    .await
                    .recon_at(at)
            }
            None => reconcile::take_treasury_file(ctx.store(), ente, &bytes, ctx.now())
                .await
                .recon_at(at),
        }
    })
    .await
}

/// Matches every open sospeso to its flow and records the anomalies.
pub async fn run(ctx: &Ctx, ente: &str) -> Result<Summary, AppError> {
    audited(ctx, Some(ente), "reconciliation.run", ente, async {
        ctx.caller.require(ente, Area::Reporting, Access::Write)?;
        reconcile::reconcile(ctx.store(), ente, ctx.now())
            .await
            .recon_at(Place::new("reconciliation.run", ente, ""))
    })
    .await
}

/// The split over accertamenti of a flow, a sospeso or an IUV.
pub async fn breakdown(ctx: &Ctx, ente: &str, of: BreakdownOf<'_>) -> Result<Breakdown, AppError> {
    ctx.caller.require(ente, Area::Reporting, Access::Read)?;
    reconcile::breakdown(ctx.store(), ente, of)
        .await
        .recon_at(Place::new("reconciliation.breakdown", ente, ""))
}

/// The line classes a filter may name.
pub const CLASSES: &[&str] = &[
    "RECONCILED",
    "AWAITING_TREASURY",
    "AWAITING_FLOW",
    "FLOW_WITHOUT_RECEIPT",
    "UNKNOWN_DEBT",
    "UNPAID",
];

/// A page of the transfers the flows report, classified by their four
/// sources, by flow id and line.
pub async fn lines(
    ctx: &Ctx,
    ente: &str,
    flow_id: Option<&str>,
    class: Option<&str>,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<ClassifiedLine>, AppError> {
    ctx.caller.require(ente, Area::Reporting, Access::Read)?;
    let limit = paging::limit(limit, 1000, 10_000)?;
    let after = cursor.map(|c| paging::decode(c, 2)).transpose()?;
    let after = match &after {
        Some(parts) => {
            let line = parts[1].parse().map_err(|_| paging::bad_cursor())?;
            Some((parts[0].as_str(), line))
        }
        None => None,
    };
    if let Some(c) = class
        && !CLASSES.contains(&c)
    {
        return Err(AppError::invalid(
            "UNKNOWN_CLASS",
            format!("class: classe '{c}' sconosciuta ({})", CLASSES.join(", ")),
        ));
    }
    let at = Place::new("reconciliation.lines", ente, flow_id.unwrap_or(""));
    let fetched = limit as usize + 1;
    let items =
        reconcile::classified_lines_after(ctx.store(), ente, flow_id, class, after, fetched)
            .await
            .recon_at(at)?;
    Ok(paging::page(items, limit, |l| {
        vec![l.flow_id.clone(), l.line.to_string()]
    }))
}

/// A page of the anomalies found, by code and subject.
pub async fn anomalies(
    ctx: &Ctx,
    ente: &str,
    code: Option<&str>,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<AnomalyRecord>, AppError> {
    ctx.caller.require(ente, Area::Reporting, Access::Read)?;
    let limit = paging::limit(limit, 1000, 10_000)?;
    let after = cursor.map(|c| paging::decode(c, 2)).transpose()?;
    let after = after.as_ref().map(|a| (a[0].as_str(), a[1].as_str()));
    let items = ctx
        .store()
        .recon_anomalies_after(ente, code, after, i64::from(limit) + 1)
        .await
        .at(Place::new(
            "reconciliation.anomalies",
            ente,
            code.unwrap_or(""),
        ))?;
    Ok(paging::page(items, limit, |a| {
        vec![a.code.clone(), a.subject.clone()]
    }))
}

/// Takes in the Ente's new flows from the pagoPA Node.
pub async fn fetch(ctx: &Ctx, ente: &str) -> Result<FetchReport, AppError> {
    audited(ctx, Some(ente), "flows.fetch", ente, async {
        ctx.caller.require(ente, Area::Reporting, Access::Write)?;
        reconcile::fetch_flows(ctx.store(), ente, ctx.now())
            .await
            .recon_at(Place::new("flows.fetch", ente, ""))
    })
    .await
}

/// Reconciles a transfer an accounting application read itself, idempotent
/// on the request's id.
pub async fn reconcile_request(
    ctx: &Ctx,
    ente: &str,
    request: &ReconciliationRequest,
) -> Result<ReconciliationAnswer, AppError> {
    audited(
        ctx,
        Some(ente),
        "reconciliation.request",
        &request.id,
        async {
            ctx.caller.require(ente, Area::Reporting, Access::Write)?;
            if request.id.is_empty() || request.id.len() > 64 || request.amount.0 <= 0 {
                return Err(AppError::invalid(
                    "BAD_RECONCILIATION",
                    "servono un id (al massimo 64 caratteri) e un importo positivo in centesimi",
                ));
            }
            let at = Place::new("reconciliation.request", ente, &request.id);
            reconcile::reconcile_request(ctx.store(), ente, request, ctx.now())
                .await
                .map_err(|e| {
                    let code = e.code();
                    match e {
                        RequestError::NoFlow => AppError::new(Kind::NotFound, code, e.to_string()),
                        RequestError::Amount { .. } => {
                            AppError::new(Kind::Unprocessable, code, e.to_string())
                        }
                        RequestError::Conflict(_) => AppError::conflict(code, e.to_string()),
                        RequestError::Recon(r) => recon(r, &at),
                    }
                })
        },
    )
    .await
}

pub async fn put_treasury_settings(
    ctx: &Ctx,
    ente: &str,
    settings: &TreasurySettings,
) -> Result<(), AppError> {
    audited(ctx, Some(ente), "treasury.settings", ente, async {
        ctx.caller.require(ente, Area::Reporting, Access::Write)?;
        reconcile::put_treasury_settings(ctx.store(), ente, settings, ctx.now())
            .await
            .recon_at(Place::new("treasury.settings", ente, ""))
    })
    .await
}

/// The OPI reversale that regularizes a matched sospeso, or one tied to its
/// flows by hand (over all its flows' accertamenti).
pub async fn reversale(
    ctx: &Ctx,
    ente: &str,
    movement_id: &str,
    number: u32,
) -> Result<String, AppError> {
    ctx.caller.require(ente, Area::Reporting, Access::Read)?;
    reconcile::reversale_for(ctx.store(), ente, movement_id, number, ctx.now())
        .await
        .recon_at(Place::new("reconciliation.reversale", ente, movement_id))
}

// ---------------------------------------------------------------- back office

/// The most rows a list page shows.
pub const MAX_PAGE_ROWS: u32 = 500;

/// A page of a back-office list, and whether another follows.
#[derive(Debug, Clone)]
pub struct Listed<T> {
    pub items: Vec<T>,
    pub has_next: bool,
}

/// Cuts `limit + 1` rows fetched to a page.
fn listed<T>(mut items: Vec<T>, limit: u32) -> Listed<T> {
    let has_next = items.len() > limit as usize;
    items.truncate(limit as usize);
    Listed { items, has_next }
}

/// A page size asked by a list page or an export: 1 to the export's
/// largest.
fn rows_asked(limit: u32) -> Result<u32, AppError> {
    if (1..=crate::sheet::MAX_EXPORT_ROWS).contains(&limit) {
        Ok(limit)
    } else {
        Err(AppError::invalid(
            "BAD_LIMIT",
            format!("limit: da 1 a {}", crate::sheet::MAX_EXPORT_ROWS),
        ))
    }
}

/// A page of the Ente's current flows, searched and sorted.
pub async fn search_flows(
    ctx: &Ctx,
    ente: &str,
    mut query: FlowQuery,
) -> Result<Listed<FlowRow>, AppError> {
    ctx.caller.require(ente, Area::Reporting, Access::Read)?;
    let limit = rows_asked(query.limit)?;
    query.limit = limit + 1;
    let rows =
        ctx.store()
            .search_flows(ente, &query)
            .await
            .at(Place::new("flows.search", ente, ""))?;
    Ok(listed(rows, limit))
}

/// One of the Ente's flows (its current version), with the sospeso that
/// pays it.
pub async fn flow(ctx: &Ctx, ente: &str, flow_id: &str) -> Result<FlowRow, AppError> {
    ctx.caller.require(ente, Area::Reporting, Access::Read)?;
    ctx.store()
        .current_flow(ente, flow_id)
        .await
        .at(Place::new("flows.get", ente, flow_id))?
        .ok_or_else(|| {
            AppError::new(
                Kind::NotFound,
                "FLOW_UNKNOWN",
                format!("nessun flusso {flow_id}"),
            )
        })
}

/// A page (from 0) of a flow's lines, each classified by its sources, of
/// `class` only if given.
pub async fn flow_lines(
    ctx: &Ctx,
    ente: &str,
    flow_id: &str,
    class: Option<&str>,
    page: u32,
    limit: u32,
) -> Result<Listed<ClassifiedLine>, AppError> {
    ctx.caller.require(ente, Area::Reporting, Access::Read)?;
    let limit = rows_asked(limit)?;
    check_class(class)?;
    let skip = (page as usize).saturating_mul(limit as usize);
    let mut lines = reconcile::classified_lines(
        ctx.store(),
        ente,
        Some(flow_id),
        class,
        skip.saturating_add(limit as usize + 1),
    )
    .await
    .recon_at(Place::new("flows.lines", ente, flow_id))?;
    let lines = lines.split_off(skip.min(lines.len()));
    Ok(listed(lines, limit))
}

fn check_class(class: Option<&str>) -> Result<(), AppError> {
    match class {
        Some(c) if !CLASSES.contains(&c) => Err(AppError::invalid(
            "UNKNOWN_CLASS",
            format!("classe: '{c}' sconosciuta ({})", CLASSES.join(", ")),
        )),
        _ => Ok(()),
    }
}

/// One part of a breakdown, with its accertamento's details when the
/// Ente has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakdownRow {
    /// `None`: money attributed to no accertamento.
    pub accertamento: Option<incasso_core::accertamento::AccertamentoRef>,
    pub description: Option<String>,
    pub chapter: Option<String>,
    pub article: Option<String>,
    pub amount: incasso_core::Cents,
}

/// The split over accertamenti of a flow or a sospeso, with each
/// accertamento's description and chapter.
pub async fn breakdown_rows(
    ctx: &Ctx,
    ente: &str,
    of: BreakdownOf<'_>,
) -> Result<Vec<BreakdownRow>, AppError> {
    let split = breakdown(ctx, ente, of).await?;
    let mut rows = Vec::with_capacity(split.len());
    for (acc, amount) in split {
        let details = match &acc {
            Some(a) => ctx
                .store()
                .get_accertamento(ente, a.year, &a.code)
                .await
                .ok(),
            None => None,
        };
        rows.push(BreakdownRow {
            description: details.as_ref().map(|d| d.description.clone()),
            chapter: details.as_ref().map(|d| d.chapter.clone()),
            article: details.and_then(|d| d.article),
            accertamento: acc,
            amount,
        });
    }
    Ok(rows)
}

/// A page of the Ente's treasury movements, searched and sorted, with what
/// the latest run made of each.
pub async fn search_movements(
    ctx: &Ctx,
    ente: &str,
    mut query: MovementQuery,
) -> Result<Listed<MovementRow>, AppError> {
    ctx.caller.require(ente, Area::Reporting, Access::Read)?;
    let limit = rows_asked(query.limit)?;
    query.limit = limit + 1;
    let rows = ctx
        .store()
        .search_movements(ente, &query)
        .await
        .at(Place::new("treasury.search", ente, ""))?;
    Ok(listed(rows, limit))
}

/// A movement as its page shows it: what the latest run made of it, its
/// tie by hand if it has one, and, for a sospeso a clerk may tie, the
/// flows it may be tied to (current, and paid by no other sospeso).
#[derive(Debug, Clone)]
pub struct MovementView {
    pub row: MovementRow,
    pub tie: Option<ManualTie>,
    /// The flows it may be tied to; empty when it may not be tied.
    pub candidates: Vec<FlowRow>,
    /// Whether it may be tied by hand (automatic matching failed).
    pub tieable: bool,
}

/// One of the Ente's movements, with its tie and candidate flows.
pub async fn movement(ctx: &Ctx, ente: &str, movement_id: &str) -> Result<MovementView, AppError> {
    ctx.caller.require(ente, Area::Reporting, Access::Read)?;
    let at = Place::new("treasury.movement", ente, movement_id);
    let row = ctx
        .store()
        .movement_row(ente, movement_id)
        .await
        .at(at)?
        .ok_or_else(|| {
            AppError::new(
                Kind::NotFound,
                "MOVEMENT_UNKNOWN",
                format!("movimento {movement_id} sconosciuto"),
            )
        })?;
    let tie = ctx.store().manual_tie(ente, movement_id).await.at(at)?;
    let tieable = matches!(row.status.as_deref(), Some("UNMATCHED" | "AMOUNT_MISMATCH"));
    let candidates = if tieable {
        // The flows no sospeso pays, the latest settled first: a big
        // Ente's unpaid flows are few, and the form shows a thousand at
        // most.
        ctx.store()
            .search_flows(
                ente,
                &FlowQuery {
                    only_unpaid: true,
                    sort: incasso_store::reporting::FlowSort::SettlementDate,
                    descending: true,
                    limit: 1000,
                    ..FlowQuery::default()
                },
            )
            .await
            .at(at)?
    } else {
        Vec::new()
    };
    Ok(MovementView {
        row,
        tie,
        candidates,
        tieable,
    })
}

/// The latest run's anomalies counted by code: how many and how much.
pub async fn anomaly_counts(
    ctx: &Ctx,
    ente: &str,
) -> Result<Vec<(String, i64, incasso_core::Cents)>, AppError> {
    ctx.caller.require(ente, Area::Reporting, Access::Read)?;
    ctx.store()
        .anomaly_totals_by_code(ente)
        .await
        .at(Place::new("reconciliation.anomaly_counts", ente, ""))
}

/// A page (from 0) of the latest run's anomalies, of one code if given.
pub async fn anomalies_page(
    ctx: &Ctx,
    ente: &str,
    code: Option<&str>,
    page: u32,
    limit: u32,
) -> Result<Listed<AnomalyRecord>, AppError> {
    ctx.caller.require(ente, Area::Reporting, Access::Read)?;
    let limit = rows_asked(limit)?;
    if let Some(c) = code
        && !reconcile::ANOMALY_CLASSES.iter().any(|(k, _, _)| *k == c)
    {
        return Err(AppError::invalid(
            "UNKNOWN_ANOMALY",
            format!("classe: anomalia '{c}' sconosciuta"),
        ));
    }
    let rows = ctx
        .store()
        .recon_anomalies_page(ente, code, u64::from(page) * u64::from(limit), limit + 1)
        .await
        .at(Place::new(
            "reconciliation.anomalies",
            ente,
            code.unwrap_or(""),
        ))?;
    Ok(listed(rows, limit))
}

/// Ties an open sospeso to the flows it pays, by hand, with the clerk's
/// note; then reruns the matching. Refused with nothing written when the
/// flows do not add up to the sospeso exactly, or one is paid by another
/// sospeso.
pub async fn regularize(
    ctx: &Ctx,
    ente: &str,
    movement_id: &str,
    flow_ids: &[String],
    note: &str,
) -> Result<Summary, AppError> {
    audited(
        ctx,
        Some(ente),
        "regularization.create",
        movement_id,
        async {
            ctx.caller.require(ente, Area::Reporting, Access::Write)?;
            let actor = ctx.caller.actor();
            let request = reconcile::TieRequest {
                movement_id,
                flow_ids,
                note,
                actor: &actor,
            };
            reconcile::tie_manually(ctx.store(), ente, &request, ctx.now())
                .await
                .recon_at(Place::new("regularization.create", ente, movement_id))
        },
    )
    .await
}

/// Undoes a sospeso's tie by hand, then reruns the matching.
pub async fn undo_regularization(
    ctx: &Ctx,
    ente: &str,
    movement_id: &str,
) -> Result<Summary, AppError> {
    audited(ctx, Some(ente), "regularization.undo", movement_id, async {
        ctx.caller.require(ente, Area::Reporting, Access::Write)?;
        reconcile::untie(ctx.store(), ente, movement_id, ctx.now())
            .await
            .recon_at(Place::new("regularization.undo", ente, movement_id))
    })
    .await
}
