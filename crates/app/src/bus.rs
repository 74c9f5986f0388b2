//! The Digit BUS's use cases: supplies (uploaded, loaded in the background,
//! followed by their record), their reports and outcome files, the Ente's
//! layouts, and the reporting exports. The loading itself is
//! [`crate::supply`]; the export documents are [`crate::export`].

use crate::Ctx;
use crate::error::{AppError, At, Kind, Place};
use crate::paging::{self, Page};
use crate::sheet::{Cell, Sheet};
use crate::supply::{self, LoadError, LoadReport, Prepared, ResolveError, Sinks, SupplyFile};
use incasso_bus::Layout;
use incasso_core::access::{Access, Area};
use incasso_store::SupplyRecord;
use incasso_store::dashboard::{SupplyLine, SupplyOrder};
use std::sync::Arc;

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
    ctx.caller.require(ente, Area::Supplies, Access::Read)?;
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
/// or the file is wrong (a file that is not a supply in that layout, or
/// empty: nothing is recorded), or the file was loaded already; otherwise
/// loaded on a task of its own, its outcome stored in the commit that
/// accepts it.
pub async fn start_upload(
    ctx: &Ctx,
    ente: &str,
    layout_name: &str,
    file_name: &str,
    service: Option<String>,
    bytes: Vec<u8>,
) -> Result<Started, AppError> {
    crate::audit::audited(ctx, Some(ente), "supply.upload", file_name, async {
        ctx.caller.require(ente, Area::Supplies, Access::Write)?;
        ctx.store()
            .get_ente(ente)
            .await
            .at(Place::new("supplies.upload", ente, file_name))?;
        let layout = supply::resolve_layout(ctx.store(), ente, layout_name).await?;
        if !layout.loads() {
            return Err(LoadError::ExportOnly(layout.name.clone()).into());
        }
        if bytes.is_empty() {
            return Err(AppError::invalid("EMPTY_FILE", "il file è vuoto"));
        }
        let bytes = SharedBytes(Arc::new(bytes));
        let scope = office_scope(ctx, ente).await?;
        probe(&layout, &bytes, service.as_deref(), scope).await?;
        let open = move || -> std::io::Result<Box<dyn std::io::Read + Send>> {
            Ok(Box::new(std::io::Cursor::new(bytes.clone())))
        };
        let file = SupplyFile {
            ente,
            layout: &layout,
            default_service: service.as_deref(),
            file_name,
            open: &open,
        };
        let prepared: Prepared = supply::prepare(ctx.store(), &file).await?;
        if let Some(mine) = operator_offices(ctx) {
            ctx.store()
                .set_supply_offices(ente, prepared.supply_id, &mine)
                .await
                .at(Place::new("supplies.upload", ente, file_name))?;
        }
        // Accepted means kept, across a power cut too: a file sent again
        // after one resumes this supply instead of starting another.
        ctx.store()
            .durable()
            .await
            .at(Place::new("supplies.upload", ente, file_name))?;
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

/// An upload's bytes, shared by the probe, the hash and the load without
/// a copy each.
#[derive(Clone)]
struct SharedBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// The rows read before a file is taken for a supply in its layout.
const PROBE_RECORDS: usize = 100;

/// For an operator limited to some offices: the catalogue's services by
/// code, with their office, and the offices in scope. `None` for everyone
/// else.
async fn office_scope(ctx: &Ctx, ente: &str) -> Result<Option<OfficeScope>, AppError> {
    let crate::Caller::Operator(o) = &ctx.caller else {
        return Ok(None);
    };
    let Some(offices) = o.rights.office_scope() else {
        return Ok(None);
    };
    let services = ctx
        .store()
        .list_services(ente)
        .await
        .at(Place::new("supplies.upload", ente, ""))?
        .into_iter()
        .map(|s| (s.code, s.office_code))
        .collect();
    Ok(Some(OfficeScope {
        services,
        offices: offices.to_vec(),
    }))
}

struct OfficeScope {
    services: std::collections::HashMap<String, Option<String>>,
    offices: Vec<String>,
}

impl OfficeScope {
    /// A row's service is one of the operator's offices'; a service the
    /// catalogue does not have is left to the load, which reports it.
    fn check(&self, line: usize, service: Option<&str>) -> Result<(), AppError> {
        let refused = |detail: String| AppError::new(Kind::Forbidden, "OFFICE_SCOPE", detail);
        let Some(code) = service else {
            return Err(refused(format!(
                "riga {line}: manca il servizio; indicare un servizio dei propri uffici"
            )));
        };
        match self.services.get(code) {
            None => Ok(()),
            Some(Some(office)) if self.offices.iter().any(|o| o == office) => Ok(()),
            Some(office) => Err(refused(format!(
                "riga {line}: il servizio {code} è dell'ufficio {}, fuori dai propri uffici",
                office.as_deref().unwrap_or("(nessuno)")
            ))),
        }
    }
}

/// Reads the file as `layout` says before anything is recorded: a file of
/// another layout, one with no rows, or one none of whose first rows can
/// be read is refused with the reason, so the archive holds supplies, not
/// mistakes. For an operator limited to some offices, every row is read,
/// and each must be of a service of theirs.
async fn probe(
    layout: &Layout,
    bytes: &SharedBytes,
    default_service: Option<&str>,
    scope: Option<OfficeScope>,
) -> Result<(), AppError> {
    let (layout, bytes) = (layout.clone(), bytes.clone());
    let default_service = default_service.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        probe_blocking(&layout, bytes, default_service.as_deref(), scope.as_ref())
    })
    .await
    .map_err(|e| AppError::internal(&Place::new("supplies.probe", "", ""), &e))?
}

fn probe_blocking(
    layout: &Layout,
    bytes: SharedBytes,
    default_service: Option<&str>,
    scope: Option<&OfficeScope>,
) -> Result<(), AppError> {
    let bad = |detail: String| AppError::invalid("NOT_A_SUPPLY", detail);
    let records = incasso_bus::read::records(layout, std::io::Cursor::new(bytes))
        .map_err(|e| bad(e.to_string()))?;
    let (mut read, mut good) = (0usize, 0usize);
    let mut first_error: Option<String> = None;
    for record in records {
        if read >= PROBE_RECORDS && scope.is_none() {
            break;
        }
        read += 1;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                first_error.get_or_insert_with(|| format!("riga {}: {}", e.line, e.message));
                continue;
            }
        };
        match incasso_bus::normalize::row(layout, &record) {
            Ok(row) => {
                good += 1;
                if let Some(scope) = scope {
                    let service = row.values.get("service").map(String::as_str);
                    scope.check(row.line, service.or(default_service))?;
                }
            }
            Err(errors) => {
                if let Some(e) = errors.first() {
                    first_error.get_or_insert_with(|| {
                        format!("riga {}, campo {}: {}", e.line, e.field, e.message)
                    });
                }
            }
        }
    }
    if read == 0 {
        return Err(bad(format!(
            "il file non contiene righe da caricare con il tracciato '{}'",
            layout.name
        )));
    }
    if good == 0 {
        return Err(bad(format!(
            "il file non sembra una fornitura nel tracciato '{}': nessuna delle prime {read} righe si legge ({})",
            layout.name,
            first_error.unwrap_or_default()
        )));
    }
    Ok(())
}

/// Claims and records a supply file, to be loaded by [`run`] (the CLI's
/// two steps, so that it can say when a load resumes).
pub async fn prepare(ctx: &Ctx, file: &SupplyFile<'_>) -> Result<Prepared, LoadError> {
    ctx.caller
        .require(file.ente, Area::Supplies, Access::Write)
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

/// The offices the calling operator is limited to, if they are.
fn operator_offices(ctx: &Ctx) -> Option<Vec<String>> {
    match &ctx.caller {
        crate::Caller::Operator(o) => o.rights.office_scope().map(<[String]>::to_vec),
        _ => None,
    }
}

/// An operator limited to offices reaches a supply only when it was loaded
/// by one limited to those offices or some of them: its report and notices
/// hold its debtors. Else it is, for them, not there.
pub async fn require_supply_in_scope(ctx: &Ctx, ente: &str, id: i64) -> Result<(), AppError> {
    ctx.caller.require(ente, Area::Supplies, Access::Read)?;
    let Some(mine) = operator_offices(ctx) else {
        return Ok(());
    };
    let loaded_under = ctx.store().supply_offices(ente, id).await.at(Place::new(
        "supplies.scope",
        ente,
        &id.to_string(),
    ))?;
    match loaded_under {
        Some(offices) if !offices.is_empty() && offices.iter().all(|o| mine.contains(o)) => Ok(()),
        _ => Err(AppError::new(
            Kind::NotFound,
            "SUPPLY_NOT_FOUND",
            format!("fornitura {id} non trovata"),
        )),
    }
}

/// A supply's record: LOADING while it loads (with the counters of its last
/// checkpoint), then LOADED, LOADED_WITH_ERRORS, REJECTED or FAILED.
pub async fn supply(ctx: &Ctx, ente: &str, id: i64) -> Result<SupplyRecord, AppError> {
    require_supply_in_scope(ctx, ente, id).await?;
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
    ctx.caller.require(ente, Area::Supplies, Access::Read)?;
    // The whole archive, for programs and those not limited to offices
    // (the back office lists an office's own through `supplies_sheet`).
    if operator_offices(ctx).is_some() {
        return Err(AppError::forbidden());
    }
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
    ctx.caller.require(ente, Area::Supplies, Access::Read)?;
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
    ctx.caller.require(ente, Area::Supplies, Access::Read)?;
    let at = Place::new("layouts.get", ente, name);
    if let Some((_, text)) = ctx.store().layout(ente, name).await.at(at)? {
        return Ok(text);
    }
    // A built-in layout as written, with the comments that explain it: the
    // starting point of an Ente's own.
    if let Some(text) = incasso_bus::builtin::source(name) {
        return Ok(text.to_string());
    }
    let layout = supply::resolve_layout(ctx.store(), ente, name).await?;
    toml::to_string(&layout).map_err(|e| AppError::internal(&at, &e))
}

/// Stores a new version of one of the Ente's layouts; answers its version.
/// A text that is not a layout is refused with the parser's reason (its
/// line and column, or the rule it breaks).
pub async fn put_layout(ctx: &Ctx, ente: &str, name: &str, text: &str) -> Result<i64, AppError> {
    crate::audit::audited(ctx, Some(ente), "layout.put", name, async {
        ctx.caller.require(ente, Area::Supplies, Access::Write)?;
        let layout =
            Layout::from_toml(text).map_err(|e| AppError::invalid("BAD_LAYOUT", e.to_string()))?;
        if layout.name != name {
            return Err(AppError::invalid(
                "BAD_LAYOUT",
                format!(
                    "il nome nel tracciato ('{}') è diverso da quello indicato ('{name}')",
                    layout.name
                ),
            ));
        }
        ctx.store()
            .put_layout(ente, name, text, ctx.now())
            .await
            .at(Place::new("layouts.put", ente, name))
    })
    .await
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
    ctx.caller.require(ente, Area::Supplies, Access::Write)?;
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
    ctx.caller.require(ente, Area::Supplies, Access::Read)?;
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
    ctx.caller.require(ente, Area::Supplies, Access::Write)?;
    crate::export::commit(ctx.store(), ente, &layout.name, consumer, exported)
        .await
        .at(Place::new("exports.delivered", ente, &layout.name))
}

// ------------------------------------------------------------ back office

/// A supply's status as a clerk reads it.
pub fn status_label(status: &str) -> &'static str {
    match status {
        "LOADING" => "In caricamento",
        "INTERRUPTED" => "Interrotta",
        "LOADED" => "Caricata",
        "LOADED_WITH_ERRORS" => "Caricata con errori",
        "REJECTED" => "Rifiutata",
        "FAILED" => "Non riuscita",
        _ => "Sconosciuto",
    }
}

/// The sort keys of the supplies archive, in the order of its columns
/// (empty: that column does not sort).
pub const SUPPLY_SORT_KEYS: [&str; 9] = [
    "numero",
    "",
    "file",
    "tracciato",
    "stato",
    "lette",
    "",
    "scartate",
    "create",
];

fn supply_order(key: &str) -> SupplyOrder {
    match key {
        "file" => SupplyOrder::FileName,
        "tracciato" => SupplyOrder::Layout,
        "stato" => SupplyOrder::Status,
        "lette" => SupplyOrder::RowsRead,
        "scartate" => SupplyOrder::RowsRejected,
        "create" => SupplyOrder::PositionsCreated,
        _ => SupplyOrder::Id,
    }
}

/// A page of a list for the back office: the sheet a page shows and an
/// export downloads, the id of each row's object, whether a page follows,
/// and how many rows there are in all.
#[derive(Debug, Clone)]
pub struct Listed<K> {
    pub sheet: Sheet,
    pub keys: Vec<K>,
    pub has_next: bool,
    pub total: u64,
}

/// Page `page` (from 1) of the Ente's supplies, `per_page` of them,
/// sorted by one of [`SUPPLY_SORT_KEYS`] (else by number: descending is
/// newest first).
pub async fn supplies_sheet(
    ctx: &Ctx,
    ente: &str,
    sort: &str,
    descending: bool,
    page: u32,
    per_page: u32,
) -> Result<Listed<i64>, AppError> {
    ctx.caller.require(ente, Area::Supplies, Access::Read)?;
    let order = supply_order(sort);
    let ascending = !descending;
    let per_page = per_page.clamp(1, crate::sheet::MAX_EXPORT_ROWS);
    let offset = u64::from(page.max(1) - 1) * u64::from(per_page);
    let scope = operator_offices(ctx);
    let (lines, total) = ctx
        .store()
        .supplies_page(ente, order, ascending, offset, per_page, scope.as_deref())
        .await
        .at(Place::new("supplies.sheet", ente, ""))?;
    let mut sheet = Sheet::new(
        "Forniture",
        &[
            "Numero",
            "Caricata il",
            "File",
            "Tracciato",
            "Stato",
            "Righe lette",
            "Righe caricate",
            "Righe scartate",
            "Posizioni create",
        ],
    );
    let mut keys = Vec::with_capacity(lines.len());
    for l in &lines {
        let r = &l.record;
        sheet.push(vec![
            Cell::Int(l.id),
            Cell::DateTime(r.started_at),
            Cell::text(&r.file_name),
            Cell::text(&r.layout),
            Cell::text(status_label(&r.status)),
            Cell::Int(r.rows_read),
            Cell::Int(r.rows_loaded),
            Cell::Int(r.rows_rejected),
            Cell::Int(r.positions_created),
        ]);
        keys.push(l.id);
    }
    Ok(Listed {
        sheet,
        keys,
        has_next: offset + (lines.len() as u64) < total,
        total,
    })
}

/// A supply as its page shows it: the record (without row errors; its
/// `outcome` an empty `Some` when there is an outcome file) and how many
/// row errors its report holds.
pub async fn supply_line(ctx: &Ctx, ente: &str, id: i64) -> Result<SupplyLine, AppError> {
    require_supply_in_scope(ctx, ente, id).await?;
    ctx.store()
        .supply_line(ente, id)
        .await
        .at(Place::new("supplies.line", ente, &id.to_string()))
}

/// Page `page` (from 1) of a supply's per-row report: line, field, value,
/// code and message of each problem, with the supply as it was read just
/// before them. The page shows both: read the other way round, a supply
/// finishing in between showed its final status over an empty report.
pub async fn supply_errors_sheet(
    ctx: &Ctx,
    ente: &str,
    id: i64,
    page: u32,
    per_page: u32,
) -> Result<(SupplyLine, Listed<i64>), AppError> {
    let line = supply_line(ctx, ente, id).await?;
    let per_page = per_page.clamp(1, crate::sheet::MAX_EXPORT_ROWS);
    let offset = u64::from(page.max(1) - 1) * u64::from(per_page);
    let errors = ctx
        .store()
        .supply_errors_page(ente, id, offset, per_page)
        .await
        .at(Place::new("supplies.errors", ente, &id.to_string()))?;
    let mut sheet = Sheet::new(
        format!("Errori della fornitura {id}"),
        &["Riga", "Campo", "Valore", "Codice", "Messaggio"],
    );
    let mut keys = Vec::with_capacity(errors.len());
    for e in &errors {
        sheet.push(vec![
            Cell::Int(e.line),
            Cell::text(&e.field),
            Cell::text(&e.value),
            Cell::text(&e.code),
            Cell::text(&e.message),
        ]);
        keys.push(e.line);
    }
    let total = line.errors.max(0) as u64;
    let listed = Listed {
        sheet,
        keys,
        has_next: offset + (errors.len() as u64) < total,
        total,
    };
    Ok((line, listed))
}

/// What the upload form offers: the layouts a supply can be read with
/// (those that load positions: the Ente's own and the built-in ones it has
/// not replaced), and the catalogue's active services (code, name) for
/// rows that name none (an office operator's own offices' only).
#[derive(Debug, Clone, Default)]
pub struct UploadChoices {
    pub layouts: Vec<String>,
    pub services: Vec<(String, String)>,
}

pub async fn upload_choices(ctx: &Ctx, ente: &str) -> Result<UploadChoices, AppError> {
    ctx.caller.require(ente, Area::Supplies, Access::Write)?;
    let at = Place::new("supplies.choices", ente, "");
    let own = ctx.store().list_layouts(ente).await.at(at)?;
    let mut layouts: Vec<String> = incasso_bus::builtin::names()
        .filter(|name| !own.iter().any(|(n, _)| n == name))
        .filter(|name| incasso_bus::builtin::get(name).is_some_and(|l| l.is_ok_and(|l| l.loads())))
        .map(str::to_string)
        .collect();
    for (name, _) in own {
        if let Some((_, text)) = ctx.store().layout(ente, &name).await.at(at)?
            && Layout::from_toml(&text).is_ok_and(|l| l.loads())
        {
            layouts.push(name);
        }
    }
    layouts.sort();
    let scope = match &ctx.caller {
        crate::Caller::Operator(o) => o.rights.office_scope().map(<[String]>::to_vec),
        _ => None,
    };
    let services = ctx
        .store()
        .list_services(ente)
        .await
        .at(at)?
        .into_iter()
        .filter(|s| s.active)
        .filter(|s| match (&scope, &s.office_code) {
            (None, _) => true,
            (Some(mine), Some(office)) => mine.contains(office),
            (Some(_), None) => false,
        })
        .map(|s| (s.code, s.name))
        .collect();
    Ok(UploadChoices { layouts, services })
}

/// The sort keys of the layouts list, in the order of its columns.
pub const LAYOUT_SORT_KEYS: [&str; 4] = ["nome", "origine", "versione", "tipo"];

/// The Ente's layouts and the built-in ones (those the Ente has not
/// replaced), with their origin, version and kind, sorted by one of
/// [`LAYOUT_SORT_KEYS`] (else by name). A few dozen at most: one page.
pub async fn layouts_sheet(
    ctx: &Ctx,
    ente: &str,
    sort: &str,
    descending: bool,
) -> Result<Listed<String>, AppError> {
    ctx.caller.require(ente, Area::Supplies, Access::Read)?;
    let at = Place::new("layouts.sheet", ente, "");
    let own = ctx.store().list_layouts(ente).await.at(at)?;
    let mut rows: Vec<(String, &'static str, Option<i64>, String)> = Vec::new();
    for name in incasso_bus::builtin::names() {
        if own.iter().any(|(n, _)| n == name) {
            continue;
        }
        let kind = incasso_bus::builtin::get(name)
            .and_then(Result::ok)
            .map(|l| kind_label(&l))
            .unwrap_or_default();
        rows.push((name.to_string(), "Predefinito", None, kind));
    }
    for (name, version) in own {
        let kind = match ctx.store().layout(ente, &name).await.at(at)? {
            Some((_, text)) => Layout::from_toml(&text)
                .map(|l| kind_label(&l))
                .unwrap_or_else(|_| "non valido".into()),
            None => String::new(),
        };
        rows.push((name, "Dell'ente", Some(version), kind));
    }
    match sort {
        "origine" => rows.sort_by(|a, b| a.1.cmp(b.1).then(a.0.cmp(&b.0))),
        "versione" => rows.sort_by(|a, b| a.2.cmp(&b.2).then(a.0.cmp(&b.0))),
        "tipo" => rows.sort_by(|a, b| a.3.cmp(&b.3).then(a.0.cmp(&b.0))),
        _ => rows.sort_by(|a, b| a.0.cmp(&b.0)),
    }
    if descending {
        rows.reverse();
    }
    let mut sheet = Sheet::new("Tracciati", &["Nome", "Origine", "Versione", "Uso"]);
    let mut keys = Vec::with_capacity(rows.len());
    for (name, origin, version, kind) in rows {
        sheet.push(vec![
            Cell::text(&name),
            Cell::text(origin),
            version.map_or(Cell::Empty, Cell::Int),
            Cell::text(kind),
        ]);
        keys.push(name);
    }
    let total = keys.len() as u64;
    Ok(Listed {
        sheet,
        keys,
        has_next: false,
        total,
    })
}

/// What a layout is for, as a clerk reads it.
fn kind_label(layout: &Layout) -> String {
    if layout.loads() {
        "Carica posizioni".into()
    } else {
        match layout.kind {
            incasso_bus::layout::LayoutKind::Positions => "Esporta pagamenti".into(),
            incasso_bus::layout::LayoutKind::Treasury => "Giornale di tesoreria".into(),
        }
    }
}
