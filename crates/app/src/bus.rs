//! The Digit BUS's use cases: supplies (uploaded, loaded in the background,
//! followed by their record), their reports and outcome files, the Ente's
//! layouts, and the reporting exports. The loading itself is
//! [`crate::supply`]; the export documents are [`crate::export`].

use crate::Ctx;
use crate::error::{AppError, At, Kind, Place};
use crate::paging::{self, Page};
use crate::supply::{self, LoadError, LoadReport, Prepared, ResolveError, Sinks, SupplyFile};
use incasso_bus::Layout;
use incasso_store::SupplyRecord;

impl From<ResolveError> for AppError {
    fn from(e: ResolveError) -> Self {
        match e {
            ResolveError::Unknown(_) => {
                AppError::new(Kind::NotFound, "UNKNOWN_LAYOUT", e.to_string())
            }
            ResolveError::Invalid(m) => AppError::invalid("BAD_LAYOUT", m),
            ResolveError::Store(s) => s.into(),
        }
    }
}

impl From<LoadError> for AppError {
    fn from(e: LoadError) -> Self {
        match e {
            LoadError::Duplicate(_) => AppError::conflict("DUPLICATE_SUPPLY", e.to_string()),
            LoadError::InProgress | LoadError::ResumeWithOtherLayout { .. } => {
                AppError::conflict("SUPPLY_IN_PROGRESS", e.to_string())
            }
            LoadError::Store(s) => s.into(),
            LoadError::ExportOnly(_) => AppError::invalid("EXPORT_ONLY_LAYOUT", e.to_string()),
            LoadError::Forbidden(_) => AppError::forbidden(),
            other => AppError::invalid("BAD_FILE", other.to_string()),
        }
    }
}

/// The layout `name` for `ente`: the Ente's own newest version, else the
/// built-in one.
pub async fn layout(ctx: &Ctx, ente: &str, name: &str) -> Result<Layout, AppError> {
    ctx.caller.require_ente(ente)?;
    Ok(supply::resolve_layout(ctx.store(), ente, name).await?)
}

/// An uploaded supply, claimed and recorded, whose load runs in the
/// background: its record is the status to follow.
pub struct Started {
    pub supply_id: i64,
    /// Whether it resumes the interrupted load of the same file.
    pub resumed: bool,
}

/// Starts loading an uploaded file: refused at once if the Ente, the layout
/// or the file is wrong, or the file was loaded already; otherwise loaded
/// on a task of its own, its outcome stored in the commit that accepts it.
pub async fn start_upload(
    ctx: &Ctx,
    ente: &str,
    layout_name: &str,
    file_name: &str,
    service: Option<String>,
    bytes: Vec<u8>,
) -> Result<Started, AppError> {
    crate::audit::audited(ctx, Some(ente), "supply.upload", file_name, async {
        ctx.caller.require_ente(ente)?;
        ctx.store()
            .get_ente(ente)
            .await
            .at(Place::new("supplies.upload", ente, file_name))?;
        let layout = supply::resolve_layout(ctx.store(), ente, layout_name).await?;
        if bytes.is_empty() {
            return Err(AppError::invalid("EMPTY_FILE", "il file è vuoto"));
        }
        let bytes = std::sync::Arc::new(bytes);
        let open = move || -> std::io::Result<Box<dyn std::io::Read + Send>> {
            Ok(Box::new(std::io::Cursor::new(bytes.as_ref().clone())))
        };
        let file = SupplyFile {
            ente,
            layout: &layout,
            default_service: service.as_deref(),
            file_name,
            open: &open,
        };
        let prepared: Prepared = supply::prepare(ctx.store(), &file).await?;
        let started = Started {
            supply_id: prepared.supply_id,
            resumed: prepared.resumes(),
        };
        let (store, ente, file_name) =
            (ctx.store().clone(), ente.to_string(), file_name.to_string());
        tokio::spawn(async move {
            let file = SupplyFile {
                ente: &ente,
                layout: &layout,
                default_service: service.as_deref(),
                file_name: &file_name,
                open: &open,
            };
            let sinks = Sinks {
                store_outcome: true,
                ..Sinks::none()
            };
            let supply_id = prepared.supply_id;
            if let Err(e) = supply::run(&store, &file, prepared, sinks).await {
                tracing::warn!(ente = %ente, supply = supply_id, error = %e, "supply load failed");
            }
        });
        Ok(started)
    })
    .await
}

/// Claims and records a supply file, to be loaded by [`run`] (the CLI's
/// two steps, so that it can say when a load resumes).
pub async fn prepare(ctx: &Ctx, file: &SupplyFile<'_>) -> Result<Prepared, LoadError> {
    ctx.caller
        .require_ente(file.ente)
        .map_err(|e| LoadError::Forbidden(e.detail))?;
    supply::prepare(ctx.store(), file).await
}

/// Loads a prepared supply now; the outcome goes to `sinks`.
pub async fn run(
    ctx: &Ctx,
    file: &SupplyFile<'_>,
    prepared: Prepared,
    sinks: Sinks<'_>,
) -> Result<LoadReport, LoadError> {
    supply::run(ctx.store(), file, prepared, sinks).await
}

/// A supply's record: LOADING while it loads (with the counters of its last
/// checkpoint), then LOADED, LOADED_WITH_ERRORS, REJECTED or FAILED.
pub async fn supply(ctx: &Ctx, ente: &str, id: i64) -> Result<SupplyRecord, AppError> {
    ctx.caller.require_ente(ente)?;
    ctx.store()
        .supply(ente, id)
        .await
        .at(Place::new("supplies.get", ente, &id.to_string()))
}

/// The per-row report (line, field, value, code, message) as CSV.
pub async fn report_csv(ctx: &Ctx, ente: &str, id: i64) -> Result<Vec<u8>, AppError> {
    Ok(supply::report_csv(&supply(ctx, ente, id).await?.errors))
}

/// The supply with its notice numbers, in the application's own layout:
/// the file's download name and its bytes.
pub async fn outcome(ctx: &Ctx, ente: &str, id: i64) -> Result<(String, Vec<u8>), AppError> {
    let s = supply(ctx, ente, id).await?;
    let bytes = s.outcome.ok_or_else(|| {
        AppError::new(
            Kind::NotFound,
            "NO_OUTCOME",
            "nessun esito per questa fornitura",
        )
    })?;
    Ok((supply::outcome_download_name(&s.file_name), bytes))
}

/// A page of the Ente's supplies (the archive), newest first: every supply
/// whatever door it came through (upload, inbox folder, command line, GPD's
/// massive upload), without its row errors.
pub async fn list_supplies(
    ctx: &Ctx,
    ente: &str,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<(i64, SupplyRecord)>, AppError> {
    ctx.caller.require_ente(ente)?;
    let limit = paging::limit(limit, 100, 1000)?;
    let before = match cursor {
        Some(c) => Some(
            paging::decode(c, 1)?[0]
                .parse::<i64>()
                .map_err(|_| paging::bad_cursor())?,
        ),
        None => None,
    };
    let items = ctx
        .store()
        .list_supplies(ente, before, limit + 1)
        .await
        .at(Place::new("supplies.list", ente, ""))?;
    Ok(paging::page(items, limit, |(id, _)| vec![id.to_string()]))
}

/// A page of the layouts the Ente can use, by name: each built-in one
/// (`None`) unless the Ente has its own version of it (`Some(version)`).
pub async fn list_layouts(
    ctx: &Ctx,
    ente: &str,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<(String, Option<i64>)>, AppError> {
    ctx.caller.require_ente(ente)?;
    let (default, max) = paging::REGISTRY_PAGE;
    let limit = paging::limit(limit, default, max)?;
    let mut out: Vec<(String, Option<i64>)> = incasso_bus::builtin::names()
        .map(|n| (n.to_string(), None))
        .collect();
    for (name, version) in
        ctx.store()
            .list_layouts(ente)
            .await
            .at(Place::new("layouts.list", ente, ""))?
    {
        out.retain(|(n, _)| *n != name);
        out.push((name, Some(version)));
    }
    paging::of_whole(out, cursor, limit, 1, |(name, _)| vec![name.clone()])
}

/// A layout's TOML text: the Ente's own as stored, or the built-in one.
pub async fn layout_text(ctx: &Ctx, ente: &str, name: &str) -> Result<String, AppError> {
    ctx.caller.require_ente(ente)?;
    let at = Place::new("layouts.get", ente, name);
    if let Some((_, text)) = ctx.store().layout(ente, name).await.at(at)? {
        return Ok(text);
    }
    let layout = supply::resolve_layout(ctx.store(), ente, name).await?;
    toml::to_string(&layout).map_err(|e| AppError::internal(&at, &e))
}

/// Stores a new version of one of the Ente's layouts; answers its version.
pub async fn put_layout(ctx: &Ctx, ente: &str, name: &str, text: &str) -> Result<i64, AppError> {
    ctx.caller.require_ente(ente)?;
    let layout =
        Layout::from_toml(text).map_err(|e| AppError::invalid("BAD_LAYOUT", e.to_string()))?;
    if layout.name != name {
        return Err(AppError::invalid(
            "BAD_LAYOUT",
            "il nome nel tracciato è diverso da quello nel percorso",
        ));
    }
    ctx.store()
        .put_layout(ente, name, text, ctx.now())
        .await
        .at(Place::new("layouts.put", ente, name))
}

/// The payments (or regularizations) since this consumer's last export, in
/// the layout's own export format; reading moves the consumer's cursor.
/// Answers the document and how many items it has.
pub async fn export(
    ctx: &Ctx,
    ente: &str,
    layout: &Layout,
    consumer: &str,
) -> Result<(Vec<u8>, usize), AppError> {
    ctx.caller.require_ente(ente)?;
    crate::export::export(ctx.store(), ente, layout, consumer)
        .await
        .at(Place::new("exports.export", ente, &layout.name))
}

/// As [`export`], without moving the cursor: a door that delivers the
/// document itself (a file written) records it afterwards with
/// [`export_delivered`], so that a document that never arrived is given
/// again next time instead of being lost.
pub async fn prepare_export(
    ctx: &Ctx,
    ente: &str,
    layout: &Layout,
    consumer: &str,
) -> Result<(Vec<u8>, crate::export::Exported), AppError> {
    ctx.caller.require_ente(ente)?;
    crate::export::prepare(ctx.store(), ente, layout, consumer)
        .await
        .at(Place::new("exports.prepare", ente, &layout.name))
}

/// Records that `consumer` was given what [`prepare_export`] answered.
pub async fn export_delivered(
    ctx: &Ctx,
    ente: &str,
    layout: &Layout,
    consumer: &str,
    exported: &crate::export::Exported,
) -> Result<(), AppError> {
    ctx.caller.require_ente(ente)?;
    crate::export::commit(ctx.store(), ente, &layout.name, consumer, exported)
        .await
        .at(Place::new("exports.delivered", ente, &layout.name))
}
