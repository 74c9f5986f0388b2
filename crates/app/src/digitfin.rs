//! DigitFIN's use cases: take in reporting flows and treasury files, run
//! the matching, read flows, breakdowns over accertamenti, anomalies and
//! classified lines, reconcile a transfer an accounting application read
//! itself, and propose the OPI reversale of a matched sospeso. The work is
//! [`crate::reconcile`]'s; here each door's call is checked and placed.

use crate::Ctx;
use crate::error::{AppError, At, Kind, Place};
use crate::paging::{self, Page};
use crate::reconcile::{
    self, BreakdownOf, ClassifiedLine, FetchReport, ReconError, ReconciliationAnswer,
    ReconciliationRequest, RequestError, Summary, TreasurySettings,
};
use incasso_recon::breakdown::Breakdown;
use incasso_store::{AccountedLine, AnomalyRecord, FlowIntake, LinesOf, StoredFlow};

/// A reconciliation failure as every door shows it; the store's own
/// failures are logged with `at`.
fn recon(e: ReconError, at: &Place<'_>) -> AppError {
    let code = e.code();
    let kind = match &e {
        ReconError::Flow(_) | ReconError::Treasury(_) => Kind::Invalid,
        ReconError::UnknownEnte(_) | ReconError::UnknownMovement(_) => Kind::NotFound,
        ReconError::OtherEnte { .. }
        | ReconError::NotMatched(_)
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
    ctx.caller.require_ente(ente)?;
    reconcile::take_flow_named(ctx.store(), ente, bytes, ctx.now())
        .await
        .recon_at(Place::new("flows.take", ente, ""))
}

/// A page of the current version of each of the Ente's flows, by flow id.
pub async fn list_flows(
    ctx: &Ctx,
    ente: &str,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<StoredFlow>, AppError> {
    ctx.caller.require_ente(ente)?;
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
    ctx.caller.require_ente(ente)?;
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
    ctx.caller.require_ente(ente)?;
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
}

/// Matches every open sospeso to its flow and records the anomalies.
pub async fn run(ctx: &Ctx, ente: &str) -> Result<Summary, AppError> {
    ctx.caller.require_ente(ente)?;
    reconcile::reconcile(ctx.store(), ente, ctx.now())
        .await
        .recon_at(Place::new("reconciliation.run", ente, ""))
}

/// The split over accertamenti of a flow, a sospeso or an IUV.
pub async fn breakdown(ctx: &Ctx, ente: &str, of: BreakdownOf<'_>) -> Result<Breakdown, AppError> {
    ctx.caller.require_ente(ente)?;
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
    ctx.caller.require_ente(ente)?;
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
    ctx.caller.require_ente(ente)?;
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
    ctx.caller.require_ente(ente)?;
    reconcile::fetch_flows(ctx.store(), ente, ctx.now())
        .await
        .recon_at(Place::new("flows.fetch", ente, ""))
}

/// Reconciles a transfer an accounting application read itself, idempotent
/// on the request's id.
pub async fn reconcile_request(
    ctx: &Ctx,
    ente: &str,
    request: &ReconciliationRequest,
) -> Result<ReconciliationAnswer, AppError> {
    ctx.caller.require_ente(ente)?;
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
}

pub async fn put_treasury_settings(
    ctx: &Ctx,
    ente: &str,
    settings: &TreasurySettings,
) -> Result<(), AppError> {
    ctx.caller.require_ente(ente)?;
    reconcile::put_treasury_settings(ctx.store(), ente, settings, ctx.now())
        .await
        .recon_at(Place::new("treasury.settings", ente, ""))
}

/// The OPI reversale that regularizes a matched sospeso.
pub async fn reversale(
    ctx: &Ctx,
    ente: &str,
    movement_id: &str,
    number: u32,
) -> Result<String, AppError> {
    ctx.caller.require_ente(ente)?;
    reconcile::reversale_for(ctx.store(), ente, movement_id, number, ctx.now())
        .await
        .recon_at(Place::new("reconciliation.reversale", ente, movement_id))
}
