//! Loading a supply (*fornitura*): a management application's file, in its
//! own layout, into debt positions.
//!
//! One pass over the file, one chunk of groups (positions) in memory at a
//! time. The supply's row is recorded first, so its status can be followed
//! from any process, and the file is claimed (see `incasso_store::claim`) so
//! that one loader at a time works on it.
//!
//! A layout that wants all or nothing gets exactly that: every write in one
//! transaction; the first bad row stops the writing, the rest is still
//! checked so the report lists every problem, and the transaction rolls
//! back. A kill -9 leaves nothing, and the file can simply be sent again.
//!
//! A layout that accepts partial loads writes the good positions and reports
//! the others, committing every `checkpoint_rows` rows (the layout's; by
//! default 50,000, about a second) together with the supply's checkpoint.
//! Other writers are not held up for the length of a big file, and a load
//! killed halfway resumes after its last checkpoint when the same file is
//! sent again; never twice.
//!
//! Once accepted, the same file (by SHA-256) is refused.

use chrono::Utc;
use incasso_bus::Layout;
use incasso_bus::layout::Format;
use incasso_bus::normalize::{self, Built, Context, Grouper, Op, Row, RowError};
use incasso_bus::read::{self, FileError, Record};
use incasso_core::position::DebtPosition;
use incasso_core::position::PositionStatus;
use incasso_store::{LoadingSupply, Store, StoreError, SupplyError, SupplyRecord};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};

/// Row errors kept for the report; past this only the count grows, so a
/// hopeless file cannot fill memory with its own errors.
const MAX_REPORTED_ERRORS: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    File(#[from] FileError),
    #[error("lo stesso file è già stato caricato per questo ente (fornitura {0})")]
    Duplicate(i64),
    #[error("lo stesso file è in caricamento in questo momento")]
    InProgress,
    #[error(
        "il caricamento interrotto di questo file (fornitura {id}) usava il tracciato '{layout}': rinviarlo con quel tracciato per riprenderlo"
    )]
    ResumeWithOtherLayout { id: i64, layout: String },
    #[error(
        "il tracciato '{0}' non carica posizioni debitorie (è solo di esportazione o di tesoreria)"
    )]
    ExportOnly(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("errore di lettura: {0}")]
    Io(#[from] std::io::Error),
}

/// What a load did; also what the status URL and the CLI show.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadReport {
    pub supply_id: Option<i64>,
    pub status: String,
    pub accepted: bool,
    pub rows_read: i64,
    pub rows_loaded: i64,
    pub rows_rejected: i64,
    pub positions_created: i64,
    pub positions_updated: i64,
    pub positions_cancelled: i64,
    pub message: String,
    #[serde(skip)]
    pub errors: Vec<RowError>,
}

/// Streams a file through SHA-256.
pub fn file_hash(mut reader: impl Read) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((crate::keys::hex(&hasher.finalize()), size))
}

/// A record's values with the notice number and IUV in their columns
/// (`slots`), borrowed: a million-row outcome copies nothing per field.
fn fields<'a>(
    slots: &'a [(usize, bool)],
    width: usize,
    r: &'a Record,
    nav: &'a str,
    iuv: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    (0..width.max(r.values.len())).map(move |i| match slots.iter().find(|(at, _)| *at == i) {
        Some((_, true)) => nav,
        Some((_, false)) => iuv,
        None => r.values.get(i).map_or("", String::as_str),
    })
}

/// Writes the outcome file: the application's rows, in its own layout, with
/// the notice number (and IUV) of each filled in. A zipped supply gets a
/// ZIP back, holding a file of the same name; a spreadsheet gets an XLSX
/// workbook (LibreOffice reads it as well as Excel does, so ODS supplies get
/// one too: incasso writes no ODS).
pub(crate) struct OutcomeWriter<'w> {
    out: &'w mut (dyn Write + Send),
    layout: &'w Layout,
    /// The column names of a delimited file or a sheet, taken from its
    /// first record (every record shares them), with the outcome's columns.
    names: Vec<String>,
    /// Where each outcome column's value goes in a record's values.
    slots: Vec<(usize, bool)>,
    csv: Option<(csv::Writer<SharedBuffer>, SharedBuffer)>,
    /// A zipped supply's outcome, zipped at the end.
    zip_buffer: Option<Vec<u8>>,
    /// A spreadsheet's rows, written as a workbook at the end (the sheet was
    /// read whole too).
    sheet_rows: Vec<Vec<String>>,
    /// JSON: (record, element of the exploded array, notice number, IUV),
    /// written into the original document at the end.
    json_marks: Vec<(usize, Option<usize>, String, String)>,
}

impl<'w> OutcomeWriter<'w> {
    pub(crate) fn new(out: &'w mut (dyn Write + Send), layout: &'w Layout) -> Self {
        let (csv, zip_buffer) = match &layout.format {
            Format::Delimited {
                separator,
                quote,
                zipped,
                ..
            } => {
                let buffer = SharedBuffer::default();
                let writer = csv::WriterBuilder::new()
                    .delimiter(*separator as u8)
                    .quote(*quote as u8)
                    .has_headers(false)
                    .from_writer(buffer.clone());
                (Some((writer, buffer)), zipped.then(Vec::new))
            }
            _ => (None, None),
        };
        OutcomeWriter {
            out,
            layout,
            names: Vec::new(),
            slots: Vec::new(),
            csv,
            zip_buffer,
            sheet_rows: Vec::new(),
            json_marks: Vec::new(),
        }
    }

    /// The header row, on the first record only. Learns where the notice
    /// number and IUV go.
    fn header(&mut self, r: &Record) -> Option<Vec<String>> {
        if !self.names.is_empty() {
            return None;
        }
        self.names = r.names();
        for (col, is_nav) in [
            (self.layout.outcome.notice_number.as_deref(), true),
            (self.layout.outcome.iuv.as_deref(), false),
        ] {
            if let Some(col) = col {
                let at = match self.names.iter().position(|n| n == col) {
                    Some(i) => i,
                    None => {
                        self.names.push(col.to_string());
                        self.names.len() - 1
                    }
                };
                self.slots.push((at, is_nav));
            }
        }
        Some(self.names.clone())
    }

    /// The header (first record only) and the record's values, owned.
    fn row(&mut self, r: &Record, nav: &str, iuv: &str) -> (Option<Vec<String>>, Vec<String>) {
        let header = self.header(r);
        let values = fields(&self.slots, self.names.len(), r, nav, iuv)
            .map(str::to_string)
            .collect();
        (header, values)
    }

    fn record(&mut self, r: &Record, nav: &str, iuv: &str) -> std::io::Result<()> {
        let nav_col = self.layout.outcome.notice_number.as_deref();
        let iuv_col = self.layout.outcome.iuv.as_deref();
        match &self.layout.format {
            Format::Delimited { header, .. } => {
                let with_header = *header;
                let head = self.header(r);
                let Some((w, buffer)) = self.csv.as_mut() else {
                    return Ok(());
                };
                if let Some(h) = head.filter(|_| with_header) {
                    w.write_record(&h)?;
                }
                w.write_record(fields(&self.slots, self.names.len(), r, nav, iuv))?;
                // Whole records only: a multi-byte character must not be
                // split before it is re-encoded.
                w.flush()?;
                let bytes = {
                    let mut b = buffer.0.lock().expect("outcome buffer");
                    let bytes = encode(&b, self.layout.encoding);
                    b.clear();
                    bytes
                };
                match self.zip_buffer.as_mut() {
                    Some(buffer) => buffer.extend_from_slice(&bytes),
                    None => self.out.write_all(&bytes)?,
                }
                Ok(())
            }
            Format::Fixed { columns, .. } => {
                let width = columns.iter().map(|c| c.end).max().unwrap_or(0);
                let mut line: Vec<char> = vec![' '; width];
                for (c, v) in columns.iter().zip(&r.values) {
                    let v = if Some(c.name.as_str()) == nav_col {
                        nav
                    } else if Some(c.name.as_str()) == iuv_col {
                        iuv
                    } else {
                        v.as_str()
                    };
                    for (k, ch) in v.chars().take(c.end - c.start + 1).enumerate() {
                        line[c.start - 1 + k] = ch;
                    }
                }
                let mut text: String = line.into_iter().collect();
                text.push_str("\r\n");
                self.out
                    .write_all(&encode(text.as_bytes(), self.layout.encoding))
            }
            Format::Json { .. } => {
                let element = r.get("@index").and_then(|i| i.parse::<usize>().ok());
                self.json_marks
                    .push((r.line, element, nav.to_string(), iuv.to_string()));
                Ok(())
            }
            Format::Spreadsheet { .. } => {
                let (head, values) = self.row(r, nav, iuv);
                self.sheet_rows.extend(head);
                self.sheet_rows.push(values);
                Ok(())
            }
        }
    }
}

impl OutcomeWriter<'_> {
    /// Ends the outcome: the documents written whole (JSON, XLSX, ZIP).
    fn finish(
        &mut self,
        open: &(dyn Fn() -> std::io::Result<Box<dyn Read + Send>> + Sync),
    ) -> std::io::Result<()> {
        match &self.layout.format {
            Format::Json { records, explode } => {
                self.finish_json(open, records, explode.as_deref())
            }
            Format::Spreadsheet { sheet, .. } => {
                let mut book = rust_xlsxwriter::Workbook::new();
                let ws = book.add_worksheet();
                ws.set_name(sheet.as_deref().unwrap_or("Esito"))
                    .map_err(std::io::Error::other)?;
                for (r, row) in self.sheet_rows.iter().enumerate() {
                    for (c, v) in row.iter().enumerate() {
                        if !v.is_empty() {
                            ws.write_string(r as u32, c as u16, v)
                                .map_err(std::io::Error::other)?;
                        }
                    }
                }
                let bytes = book.save_to_buffer().map_err(std::io::Error::other)?;
                self.out.write_all(&bytes)
            }
            Format::Delimited { .. } => {
                let Some(buffer) = self.zip_buffer.take() else {
                    return Ok(());
                };
                let name = inner_name(open()?).unwrap_or_else(|| "esito.csv".into());
                let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
                let options = zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated);
                zip.start_file(name, options)
                    .map_err(std::io::Error::other)?;
                zip.write_all(&buffer)?;
                let bytes = zip.finish().map_err(std::io::Error::other)?.into_inner();
                self.out.write_all(&bytes)
            }
            Format::Fixed { .. } => Ok(()),
        }
    }

    /// JSON supplies come back as the same document, with the notice number
    /// and IUV written into each record (or exploded element) where the
    /// layout's `outcome` says (`@.name` for a field of the element).
    fn finish_json(
        &mut self,
        open: &(dyn Fn() -> std::io::Result<Box<dyn Read + Send>> + Sync),
        records: &str,
        explode: Option<&str>,
    ) -> std::io::Result<()> {
        let mut text = String::new();
        open()?.read_to_string(&mut text)?;
        let mut doc: serde_json::Value =
            serde_json::from_str(&text).map_err(std::io::Error::other)?;
        let mut node = &mut doc;
        for part in records.split('.').filter(|p| !p.is_empty()) {
            node = node
                .get_mut(part)
                .ok_or_else(|| std::io::Error::other("records path"))?;
        }
        let Some(items) = node.as_array_mut() else {
            return Ok(());
        };
        for (line, element, nav, iuv) in &self.json_marks {
            let Some(item) = items.get_mut(line.saturating_sub(1)) else {
                continue;
            };
            let target = match (explode, element) {
                (Some(path), Some(k)) => {
                    let mut n = Some(item);
                    for part in path.split('.') {
                        n = n.and_then(|v| v.get_mut(part));
                    }
                    n.and_then(|a| a.get_mut(k.saturating_sub(1)))
                }
                _ => Some(item),
            };
            let Some(serde_json::Value::Object(obj)) = target else {
                continue;
            };
            for (field, value) in [
                (&self.layout.outcome.notice_number, nav),
                (&self.layout.outcome.iuv, iuv),
            ] {
                if let Some(field) = field
                    && !value.is_empty()
                {
                    let name = field.strip_prefix("@.").unwrap_or(field);
                    obj.insert(name.to_string(), serde_json::Value::String(value.clone()));
                }
            }
        }
        serde_json::to_writer_pretty(&mut *self.out, &doc).map_err(std::io::Error::other)
    }
}

/// The suffix of an outcome file written beside its supply: `.esito`, and
/// the extension of the container it comes in.
pub fn outcome_suffix(layout: &Layout) -> &'static str {
    match layout.format {
        Format::Spreadsheet { .. } => ".esito.xlsx",
        Format::Delimited { zipped: true, .. } => ".esito.zip",
        _ => ".esito",
    }
}

/// The name an outcome is downloaded under: `esito-<file>`, an ODS supply's
/// becoming `.xlsx` (that is what it is).
pub fn outcome_download_name(file_name: &str) -> String {
    match file_name.strip_suffix(".ods") {
        Some(stem) => format!("esito-{stem}.xlsx"),
        None => format!("esito-{file_name}"),
    }
}

/// The CSV writer's output, taken record by record to be re-encoded.
#[derive(Clone, Default)]
pub(crate) struct SharedBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("outcome buffer")
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The name of the one file in a zipped supply (already checked by the
/// reader).
fn inner_name(mut reader: impl Read) -> Option<String> {
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).ok()?;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).ok()?;
    (0..archive.len()).find_map(|i| {
        let entry = archive.by_index_raw(i).ok()?;
        let name = entry.name().ok()?.to_string();
        entry.is_file().then(|| {
            std::path::Path::new(&name)
                .file_name()
                .map_or_else(|| name.clone(), |n| n.to_string_lossy().into_owned())
        })
    })
}

/// UTF-8 text back to the layout's encoding.
fn encode(utf8: &[u8], encoding: incasso_bus::layout::Encoding) -> Vec<u8> {
    use incasso_bus::layout::Encoding;
    let text = String::from_utf8_lossy(utf8);
    match encoding {
        Encoding::Utf8 => utf8.to_vec(),
        Encoding::Windows1252 => encoding_rs::WINDOWS_1252.encode(&text).0.into_owned(),
        Encoding::Iso8859_15 => encoding_rs::ISO_8859_15.encode(&text).0.into_owned(),
        Encoding::Iso8859_1 => text
            .chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
            .collect(),
    }
}

struct Loader {
    default_service: Option<String>,
    ente: incasso_core::ente::Ente,
    services: HashMap<String, incasso_core::catalogue::Service>,
    bulk: incasso_store::Bulk,
    report: LoadReport,
    failed: bool,
    all_or_nothing: bool,
    /// A partial load commits every this many rows (the layout's).
    checkpoint_rows: usize,
    seen_iuvs: HashSet<String>,
    dropped_errors: usize,
    /// Keys with a row refused before grouping: their positions are refused.
    broken_keys: HashSet<String>,
    /// A resumed load: the rows up to this line were committed before.
    resume_line: usize,
    /// Lines refused before the interruption: no notice number in the
    /// outcome, whatever is stored under their key.
    refused_before: HashSet<usize>,
    /// Errors stored with the supply (before a resume, and at checkpoints).
    kept_errors: usize,
    /// Errors found since the last checkpoint.
    unsaved: Vec<RowError>,
    /// Rows written since the last checkpoint.
    since_checkpoint: usize,
    /// The supply's record as of now (counters; errors go in `unsaved`).
    record: SupplyRecord,
}

/// Groups checked and written together: one query for their keys, one
/// for their IUVs, multi-row inserts.
const CHUNK: usize = 500;

type Group = Vec<(Row, Record)>;

impl Loader {
    fn reject(&mut self, mut errors: Vec<RowError>, rows: usize) {
        self.report.rows_rejected += rows as i64;
        self.failed = true;
        let room = MAX_REPORTED_ERRORS.saturating_sub(self.kept_errors);
        if errors.len() > room {
            self.dropped_errors += errors.len() - room;
            errors.truncate(room);
        }
        self.kept_errors += errors.len();
        self.unsaved.extend(errors.iter().cloned());
        self.report.errors.extend(errors);
    }

    /// The supply's record with this load's counters.
    fn record_now(&self, status: &str, resume_line: usize, errors: Vec<RowError>) -> SupplyRecord {
        let r = &self.report;
        SupplyRecord {
            status: status.to_string(),
            rows_read: r.rows_read,
            rows_loaded: r.rows_loaded,
            rows_rejected: r.rows_rejected,
            positions_created: r.positions_created,
            positions_updated: r.positions_updated,
            positions_cancelled: r.positions_cancelled,
            message: r.message.clone(),
            resume_line: resume_line as i64,
            errors: errors.into_iter().map(stored_error).collect(),
            ..self.record.clone()
        }
    }

    /// Partial loads: commits what is written, with the checkpoint, once
    /// enough rows have gone by. `line` is the last line of the groups
    /// handled so far.
    async fn maybe_checkpoint(&mut self, line: usize) -> Result<(), LoadError> {
        if self.all_or_nothing || self.since_checkpoint < self.checkpoint_rows {
            return Ok(());
        }
        // Errors of rows read ahead of `line` wait for a later checkpoint: on
        // a resume those rows are read, and reported, again.
        let (now, later): (Vec<RowError>, Vec<RowError>) = std::mem::take(&mut self.unsaved)
            .into_iter()
            .partition(|e| e.line <= line);
        // Their rows are counted again on a resume too: the checkpoint
        // counts only the rows up to `line`.
        let ahead: HashSet<usize> = later.iter().map(|e| e.line).collect();
        self.unsaved = later;
        let mut record = self.record_now(incasso_store::LOADING, line, now);
        record.rows_rejected -= ahead.len() as i64;
        self.bulk.checkpoint(&record, Utc::now()).await?;
        self.since_checkpoint = 0;
        Ok(())
    }

    /// Groups committed by an interrupted load of this supply: their outcome
    /// rows, with the notice numbers stored then.
    async fn replay(
        &mut self,
        groups: &[Group],
        outcome: &mut Option<OutcomeWriter<'_>>,
    ) -> Result<(), LoadError> {
        let Some(w) = outcome.as_mut() else {
            return Ok(());
        };
        let keys: Vec<String> = groups.iter().map(|g| g[0].0.key.clone()).collect();
        let navs = self.bulk.notice_numbers_many(&keys).await?;
        for g in groups {
            let refused = g[0].0.op == Op::Cancel
                || g.iter().any(|(r, _)| self.refused_before.contains(&r.line));
            let stored = navs.get(&g[0].0.key).filter(|_| !refused);
            for (i, (_, record)) in g.iter().enumerate() {
                let (nav, iuv) = stored.and_then(|n| n.get(i).cloned()).unwrap_or_default();
                w.record(record, &nav, &iuv)?;
            }
        }
        Ok(())
    }

    fn writing(&self) -> bool {
        !(self.failed && self.all_or_nothing)
    }

    /// Checks and writes a chunk of groups; writes their records to the
    /// outcome, in file order, with their notice numbers.
    async fn chunk(
        &mut self,
        mut groups: Vec<Group>,
        outcome: &mut Option<OutcomeWriter<'_>>,
    ) -> Result<(), LoadError> {
        let last_line = |g: &Group| g.last().map_or(0, |(r, _)| r.line);
        let end = groups.last().map_or(0, last_line);
        let done = groups
            .iter()
            .take_while(|g| last_line(g) <= self.resume_line)
            .count();
        if done > 0 {
            let rest = groups.split_off(done);
            self.replay(&groups, outcome).await?;
            groups = rest;
        }
        if groups.is_empty() {
            return Ok(());
        }
        self.since_checkpoint += groups.iter().map(Vec::len).sum::<usize>();
        self.write_chunk(groups, outcome).await?;
        self.maybe_checkpoint(end).await
    }

    async fn write_chunk(
        &mut self,
        groups: Vec<Group>,
        outcome: &mut Option<OutcomeWriter<'_>>,
    ) -> Result<(), LoadError> {
        let now = Utc::now();
        let ctx = Context {
            ente: &self.ente,
            services: &self.services,
            default_service: self.default_service.as_deref(),
        };
        // 1. Build.
        let mut built: Vec<Option<Built>> = Vec::with_capacity(groups.len());
        let mut rejections = Vec::new();
        for g in &groups {
            let rows: Vec<&Row> = g.iter().map(|(r, _)| r).collect();
            if self.broken_keys.contains(&rows[0].key) {
                let errors = rows
                    .iter()
                    .map(|r| RowError {
                        line: r.line,
                        field: "key".into(),
                        value: r.key.clone(),
                        code: "INCOMPLETE_POSITION",
                        message: "un'altra riga della stessa posizione è stata scartata".into(),
                    })
                    .collect();
                rejections.push((errors, rows.len()));
                built.push(None);
                continue;
            }
            match normalize::build(&rows, &ctx) {
                Ok(b) => built.push(Some(b)),
                Err(errors) => {
                    rejections.push((errors, rows.len()));
                    built.push(None);
                }
            }
        }
        for (e, n) in rejections {
            self.reject(e, n);
        }
        // 2. What exists already, in one query.
        let keys: Vec<String> = built.iter().flatten().map(|b| b.key.clone()).collect();
        let existing = self.bulk.existing_many(&keys).await?;
        // 3. Per group: operation, rules, IUVs.
        let rules_now = now;
        let mut brought_all = Vec::new();
        for (k, slot) in built.iter_mut().enumerate() {
            let Some(b) = slot.as_ref() else { continue };
            let lines: Vec<usize> = groups[k].iter().map(|(r, _)| r.line).collect();
            let on_all = |code: &'static str, message: String| -> Vec<RowError> {
                lines
                    .iter()
                    .map(|l| RowError {
                        line: *l,
                        field: "key".into(),
                        value: b.key.clone(),
                        code,
                        message: message.clone(),
                    })
                    .collect()
            };
            let problem = match (b.op, existing.get(&b.key)) {
                (Op::Insert, Some(_)) => Some(on_all(
                    "DUPLICATE_KEY",
                    format!("esiste già una posizione con chiave '{}'", b.key),
                )),
                (Op::Update | Op::Cancel, None) => Some(on_all(
                    "UNKNOWN_KEY",
                    format!("nessuna posizione con chiave '{}'", b.key),
                )),
                (Op::Update | Op::Cancel, Some(e))
                    if matches!(
                        e.status,
                        PositionStatus::Paid
                            | PositionStatus::PartiallyPaid
                            | PositionStatus::Reported
                    ) =>
                {
                    Some(on_all(
                        "ALREADY_PAID",
                        "la posizione ha già pagamenti: non può essere modificata né annullata"
                            .into(),
                    ))
                }
                (Op::Update | Op::Cancel, Some(e))
                    if matches!(e.status, PositionStatus::Invalid | PositionStatus::Expired) =>
                {
                    Some(on_all(
                        "STATUS_NOT_ALLOWED",
                        format!("la posizione è in stato {}", e.status),
                    ))
                }
                _ => None,
            };
            let problem = problem.or_else(|| {
                (b.op != Op::Cancel)
                    .then(|| b.position.validate(&self.bulk.rules(rules_now)).err())
                    .flatten()
                    .map(|invalid| normalize::locate(b, &invalid.0))
            });
            if let Some(errors) = problem {
                let n = lines.len();
                *slot = None;
                self.reject(errors, n);
                continue;
            }
            if b.op != Op::Cancel {
                for (i, o) in b.position.options.iter().enumerate() {
                    if let Some(iuv) = &o.iuv {
                        brought_all.push((k, i, iuv.clone()));
                    }
                }
            }
        }
        // IUVs the application brings: unique in the file and in the Ente
        // (an update may keep its own).
        if !brought_all.is_empty() {
            let iuvs: Vec<String> = brought_all.iter().map(|(_, _, i)| i.clone()).collect();
            let taken = self.bulk.taken_many(&iuvs).await?;
            let mut own: HashMap<usize, HashSet<String>> = HashMap::new();
            for (k, slot) in built.iter().enumerate() {
                if let Some(b) = slot
                    && b.op == Op::Update
                {
                    own.insert(
                        k,
                        self.bulk
                            .notice_numbers(&b.key)
                            .await?
                            .into_iter()
                            .map(|(_, iuv)| iuv)
                            .collect(),
                    );
                }
            }
            let mut bad: HashMap<usize, Vec<RowError>> = HashMap::new();
            for (k, i, iuv) in brought_all {
                let mine = own.get(&k).is_some_and(|o| o.contains(&iuv));
                if (taken.contains(&iuv) && !mine) || !self.seen_iuvs.insert(iuv.clone()) {
                    let line = built[k]
                        .as_ref()
                        .and_then(|b| b.lines.get(i).copied())
                        .unwrap_or(0);
                    bad.entry(k).or_default().push(RowError {
                        line,
                        field: "option.iuv".into(),
                        value: iuv,
                        code: "DUPLICATE_IUV",
                        message: "IUV già usato da un'altra posizione o ripetuto nel file".into(),
                    });
                }
            }
            for (k, errors) in bad {
                built[k] = None;
                self.reject(errors, groups[k].len());
            }
        }
        // Every IUV this chunk brings is known before any is generated.
        self.bulk.note_brought_iuvs(
            built
                .iter()
                .flatten()
                .filter(|b| b.op != Op::Cancel)
                .flat_map(|b| b.position.options.iter().filter_map(|o| o.iuv.clone())),
        );
        // 4. Write (queued: the writer works while the next chunk is
        // checked).
        let mut numbers: Vec<Vec<(String, String)>> = vec![Vec::new(); built.len()];
        let mut inserts: Vec<usize> = Vec::new();
        let mut positions: Vec<DebtPosition> = Vec::new();
        // What rows said of their App IO invitation (notify.invite).
        let mut invites: Vec<(String, bool)> = Vec::new();
        for (k, slot) in built.iter_mut().enumerate() {
            let Some(b) = slot.as_mut() else { continue };
            self.report.rows_loaded += groups[k].len() as i64;
            if let Some(yes) = b.notify_invite
                && b.op != Op::Cancel
            {
                invites.push((b.key.clone(), yes));
            }
            match b.op {
                Op::Cancel => {
                    self.report.positions_cancelled += 1;
                    if self.writing() {
                        self.bulk.cancel(&b.key, now).await?;
                    }
                }
                Op::Update => {
                    self.report.positions_updated += 1;
                    if self.writing() {
                        // Options resent without their IUV keep the notice
                        // numbers they have (by order): debtors may hold them.
                        let kept = self.bulk.notice_numbers(&b.key).await?;
                        for (o, (nav, iuv)) in b.position.options.iter_mut().zip(kept) {
                            if o.iuv.is_none() {
                                o.notice_number = incasso_core::codes::NoticeNumber::parse(&nav)
                                    .ok()
                                    .map(|p| p.notice_number);
                                o.iuv = Some(iuv);
                            }
                        }
                        self.bulk.replace(&mut b.position, now).await?;
                        numbers[k] = incasso_store::numbers_of(&b.position);
                    }
                }
                Op::Insert => {
                    self.report.positions_created += 1;
                    if self.writing() {
                        inserts.push(k);
                        positions.push(std::mem::replace(&mut b.position, placeholder()));
                    }
                }
            }
        }
        if !positions.is_empty() {
            let assigned = self.bulk.insert_many(positions, now).await?;
            for (k, n) in inserts.into_iter().zip(assigned) {
                numbers[k] = n;
            }
        }
        if self.writing() {
            self.bulk.set_invites(&invites).await?;
        }
        // 5. The outcome, in file order.
        if let Some(w) = outcome.as_mut() {
            for (g, navs) in groups.iter().zip(&numbers) {
                for (i, (_, record)) in g.iter().enumerate() {
                    let (nav, iuv) = navs.get(i).cloned().unwrap_or_default();
                    w.record(record, &nav, &iuv)?;
                }
            }
        }
        Ok(())
    }
}

enum Produced {
    /// A row that could not be read, ruled or grouped.
    Rejected(Vec<RowError>),
    /// A row refused by the layout's rules, with the key it would have had:
    /// the rest of that position is refused too.
    RejectedRow(Vec<RowError>, String),
    /// Groups to check and write, and the rows read so far.
    Chunk(Vec<Group>, u64),
    Done(u64),
}

/// The reading side of a load, on its own thread.
fn produce(
    layout: &Layout,
    records: Box<dyn Iterator<Item = read::RecordResult> + Send>,
    tx: &tokio::sync::mpsc::Sender<Produced>,
) {
    let mut grouper = match layout.format {
        incasso_bus::layout::Format::Json { .. } => Grouper::one_record_per_position(),
        _ => Grouper::new(),
    };
    let mut pending: Group = Vec::new();
    let mut chunk: Vec<Group> = Vec::new();
    let mut rows_read = 0u64;
    let send = |m: Produced| tx.blocking_send(m).is_ok();
    for next in records {
        rows_read += 1;
        let record = match next {
            Ok(r) => r,
            Err(e) => {
                let error = RowError {
                    line: e.line,
                    field: String::new(),
                    value: String::new(),
                    code: e.code,
                    message: e.message,
                };
                if !send(Produced::Rejected(vec![error])) {
                    return;
                }
                continue;
            }
        };
        let row = match normalize::row(layout, &record) {
            Ok(r) => r,
            Err(errors) => {
                // The position this row belonged to must not load without it.
                let key = layout
                    .key
                    .iter()
                    .map(|k| record.get(k).unwrap_or("").trim().to_string())
                    .collect::<Vec<_>>()
                    .join("-");
                if !send(Produced::RejectedRow(errors, key)) {
                    return;
                }
                continue;
            }
        };
        match grouper.push(row.clone()) {
            Err(e) => {
                if !send(Produced::Rejected(vec![e])) {
                    return;
                }
            }
            Ok(previous) => {
                if previous.is_some() {
                    chunk.push(std::mem::take(&mut pending));
                    if chunk.len() >= CHUNK
                        && !send(Produced::Chunk(std::mem::take(&mut chunk), rows_read))
                    {
                        return;
                    }
                }
                pending.push((row, record));
            }
        }
    }
    if grouper.finish().is_some() {
        chunk.push(std::mem::take(&mut pending));
    }
    if !chunk.is_empty() && !send(Produced::Chunk(chunk, rows_read)) {
        return;
    }
    send(Produced::Done(rows_read));
}

/// A position to move out of a slot; never stored.
fn placeholder() -> DebtPosition {
    use incasso_core::position::{Debtor, DebtorType};
    DebtPosition::draft(
        String::new(),
        Debtor::named(DebtorType::F, String::new(), String::new()),
        String::new(),
        Vec::new(),
    )
}

/// A supply ready to load: its file claimed and its row recorded.
pub struct Prepared {
    pub supply_id: i64,
    _claim: incasso_store::SupplyClaim,
    /// The record so far: new, or that of the interrupted load it resumes.
    record: SupplyRecord,
}

impl Prepared {
    /// Whether this load resumes one interrupted after some commits.
    pub fn resumes(&self) -> bool {
        self.record.resume_line > 0
    }
}

/// Claims the file and records the supply (or finds the interrupted load of
/// the same file to resume). Refuses a file already accepted, or being
/// loaded right now.
pub async fn prepare(store: &Store, file: &SupplyFile<'_>) -> Result<Prepared, LoadError> {
    let SupplyFile {
        ente,
        layout,
        file_name,
        open,
        ..
    } = *file;
    if !layout.loads() {
        return Err(LoadError::ExportOnly(layout.name.clone()));
    }
    let (hash, size) = file_hash(open()?)?;
    store.get_ente(ente).await?;
    let claim = store
        .claim_supply(ente, &hash)
        .await?
        .ok_or(LoadError::InProgress)?;
    let now = Utc::now();
    match store.supply_of_file(ente, &hash).await? {
        Some(s)
            if s.record.status != incasso_store::LOADING
                && s.record.status != incasso_store::INTERRUPTED =>
        {
            Err(LoadError::Duplicate(s.id))
        }
        // Left LOADING, and nobody holds its claim: its loader died.
        Some(s) if s.record.layout != layout.name && s.record.resume_line > 0 => {
            Err(LoadError::ResumeWithOtherLayout {
                id: s.id,
                layout: s.record.layout,
            })
        }
        Some(s) => {
            store
                .set_supply_loading_state(ente, s.id, incasso_store::LOADING, "caricamento ripreso")
                .await?;
            let mut record = s.record;
            record.layout = layout.name.clone();
            record.file_name = file_name.to_string();
            if record.resume_line == 0 {
                // Nothing of it was committed: it starts over.
                record.errors.clear();
            }
            Ok(Prepared {
                supply_id: s.id,
                _claim: claim,
                record,
            })
        }
        None => {
            let record = SupplyRecord {
                layout: layout.name.clone(),
                file_name: file_name.to_string(),
                file_hash: hash,
                size_bytes: size as i64,
                status: incasso_store::LOADING.into(),
                started_at: now,
                message: "caricamento in corso".into(),
                ..SupplyRecord::default()
            };
            let id = store.begin_supply(ente, &record, now).await?;
            Ok(Prepared {
                supply_id: id,
                _claim: claim,
                record,
            })
        }
    }
}

fn stored_error(e: RowError) -> SupplyError {
    SupplyError {
        line: e.line as i64,
        field: e.field,
        value: e.value.chars().take(200).collect(),
        code: e.code.to_string(),
        message: e.message,
    }
}

/// A supply file as its loader sees it. `open` is called twice (hash, then
/// load): the file is streamed, never held whole (JSON layouts excepted).
#[derive(Clone, Copy)]
pub struct SupplyFile<'a> {
    pub ente: &'a str,
    pub layout: &'a Layout,
    /// The catalogue service of rows that name none.
    pub default_service: Option<&'a str>,
    /// The file's name, for the records.
    pub file_name: &'a str,
    pub open: &'a Opener,
}

/// Opens the supply's file from its start.
pub type Opener = dyn Fn() -> std::io::Result<Box<dyn Read + Send>> + Sync;

/// Where a load's results go besides the store.
pub struct Sinks<'a> {
    /// The outcome file in the application's layout, written as rows load.
    pub outcome: Option<&'a mut (dyn Write + Send)>,
    /// Keep the outcome with the supply, written in the commit that accepts
    /// it: whoever sees the supply accepted can download it (HTTP uploads).
    pub store_outcome: bool,
    /// Told the rows read so far.
    pub progress: &'a (dyn Fn(u64) + Sync),
}

impl Sinks<'_> {
    /// Nothing besides the store.
    pub fn none() -> Sinks<'static> {
        Sinks {
            outcome: None,
            store_outcome: false,
            progress: &|_| {},
        }
    }
}

/// Loads a supply: `prepare`, then `run`.
pub async fn load(
    store: &Store,
    file: &SupplyFile<'_>,
    sinks: Sinks<'_>,
) -> Result<LoadReport, LoadError> {
    let prepared = prepare(store, file).await?;
    run(store, file, prepared, sinks).await
}

/// Marks INTERRUPTED every supply left LOADING by a process that died, so
/// that a clerk reads what happened and what to do instead of a load that
/// never ends. A supply is abandoned when its claim can be taken: a live
/// loader holds it from before the supply is recorded until after its last
/// status is written. Sending the same file again resumes it as before.
/// One supply's failure does not stop the others: a round answers the
/// supplies it marked and those it could not look at, each with its error,
/// and the next round tries these again.
pub async fn mark_abandoned(store: &Store) -> Result<AbandonedRound, LoadError> {
    let mut round = AbandonedRound::default();
    for s in store.loading_supplies().await? {
        match mark_if_abandoned(store, &s).await {
            Ok(true) => round.marked.push(s.id),
            Ok(false) => {}
            Err(e) => round.failed.push((s.id, e)),
        }
    }
    Ok(round)
}

/// What one round of [`mark_abandoned`] did.
#[derive(Debug, Default)]
pub struct AbandonedRound {
    /// The supplies marked INTERRUPTED.
    pub marked: Vec<i64>,
    /// The supplies the store failed on, left LOADING for the next round.
    pub failed: Vec<(i64, LoadError)>,
}

/// Marks one LOADING supply INTERRUPTED if no loader holds its claim.
async fn mark_if_abandoned(store: &Store, s: &LoadingSupply) -> Result<bool, LoadError> {
    let Some(claim) = store.claim_supply(&s.ente, &s.file_hash).await? else {
        return Ok(false);
    };
    let saved = if s.resume_line > 0 {
        format!(", salvato fino alla riga {}", s.resume_line)
    } else {
        ", nulla è stato salvato".to_string()
    };
    let message = format!(
        "caricamento interrotto: il processo che lo eseguiva si è fermato{saved}; \
         rinviare il file per riprenderlo"
    );
    // Only a supply still LOADING changes: one that its loader finished
    // before the claim was taken keeps its outcome.
    let result = store.mark_supply_interrupted(&s.ente, s.id, &message).await;
    claim.release().await;
    Ok(result?)
}

/// Loads a prepared supply. On an error the supply is closed as FAILED
/// (all or nothing: nothing was written) or left to be resumed
/// (INTERRUPTED, partial loads).
pub async fn run(
    store: &Store,
    file: &SupplyFile<'_>,
    prepared: Prepared,
    sinks: Sinks<'_>,
) -> Result<LoadReport, LoadError> {
    let (ente, layout) = (file.ente, file.layout);
    let Prepared {
        supply_id: id,
        _claim: claim,
        record,
    } = prepared;
    let result = run_claimed(store, file, id, &record, sinks).await;
    // A partial load that fails keeps its last checkpoint (status LOADING)
    // to be resumed; an all-or-nothing one wrote nothing and is closed as
    // FAILED.
    // A file refused whole (not the declared layout) wrote nothing either.
    // A full disk in the clerk's words, not SQLite's: it is not the file's
    // fault, and the same file loads once there is room.
    let why = |e: &LoadError| match e {
        LoadError::Store(s) if s.is_disk_full() => {
            "spazio su disco del database esaurito (codice DISK_FULL)".to_string()
        }
        e => e.to_string(),
    };
    let closing = match &result {
        Err(e @ LoadError::File(_)) => Some(("REJECTED", e.to_string())),
        Err(e) if layout.all_or_nothing => {
            Some(("FAILED", format!("caricamento fallito: {}", why(e))))
        }
        _ => None,
    };
    if let Some((status, message)) = closing {
        let closing = SupplyRecord {
            status: status.into(),
            message,
            errors: Vec::new(),
            ..record
        };
        if let Err(e2) = store
            .finish_supply_unwritten(ente, id, &closing, Utc::now())
            .await
        {
            tracing::warn!(error = %e2, supply = id, "recording a failed supply");
        }
    } else if let Err(e) = &result {
        let message = format!(
            "caricamento interrotto: {}; rinviare il file per riprenderlo",
            why(e)
        );
        if let Err(e2) = store
            .set_supply_loading_state(ente, id, incasso_store::INTERRUPTED, &message)
            .await
        {
            tracing::warn!(error = %e2, supply = id, "recording an interrupted supply");
        }
    }
    claim.release().await;
    let report = result?;
    // The report says "loaded": what it counts must outlive a power cut.
    store.durable().await?;
    Ok(report)
}

async fn run_claimed(
    store: &Store,
    file: &SupplyFile<'_>,
    supply_id: i64,
    before: &SupplyRecord,
    sinks: Sinks<'_>,
) -> Result<LoadReport, LoadError> {
    let SupplyFile {
        ente,
        layout,
        default_service,
        open,
        ..
    } = *file;
    let Sinks {
        outcome,
        store_outcome,
        progress,
    } = sinks;
    let mut kept: Vec<u8> = Vec::new();
    let outcome: Option<&mut (dyn Write + Send)> = if store_outcome {
        Some(&mut kept)
    } else {
        outcome
    };
    let ente_data = store.get_ente(ente).await?;
    let services = store
        .list_services(ente)
        .await?
        .into_iter()
        .map(|s| (s.code.clone(), s))
        .collect();
    let records = read::records(layout, open()?)?;
    let resume_line = before.resume_line.max(0) as usize;
    let mut loader = Loader {
        default_service: default_service.map(str::to_string),
        ente: ente_data,
        services,
        bulk: store.bulk(ente, &layout.name, supply_id).await?,
        report: LoadReport {
            supply_id: Some(supply_id),
            rows_loaded: before.rows_loaded,
            rows_rejected: before.rows_rejected,
            positions_created: before.positions_created,
            positions_updated: before.positions_updated,
            positions_cancelled: before.positions_cancelled,
            ..LoadReport::default()
        },
        failed: !before.errors.is_empty(),
        all_or_nothing: layout.all_or_nothing,
        checkpoint_rows: layout.checkpoint_rows as usize,
        seen_iuvs: HashSet::new(),
        dropped_errors: 0,
        broken_keys: HashSet::new(),
        resume_line,
        kept_errors: before.errors.len(),
        refused_before: before.errors.iter().map(|e| e.line as usize).collect(),
        unsaved: Vec::new(),
        since_checkpoint: 0,
        record: SupplyRecord {
            errors: Vec::new(),
            ..before.clone()
        },
    };
    let mut writer = outcome.map(|out| OutcomeWriter::new(out, layout));
    // Reading, decoding, the layout's rules and grouping run on a thread of
    // their own, a chunk ahead of the checks and writes: on two cores the
    // file is parsed while the database works.
    // Eight chunks of slack between reading and checking (see the writer's
    // queue for why more than two).
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Produced>(8);
    let producer_layout = layout.clone();
    let producer = tokio::task::spawn_blocking(move || produce(&producer_layout, records, &tx));
    let mut finished = false;
    // Rows refused before an interruption were counted and stored then.
    let already = |errors: &[RowError]| errors.iter().all(|e| e.line <= resume_line);
    while let Some(message) = rx.recv().await {
        match message {
            Produced::Rejected(errors) => {
                if !already(&errors) {
                    loader.reject(errors, 1);
                }
            }
            Produced::RejectedRow(errors, key) => {
                if !already(&errors) {
                    loader.reject(errors, 1);
                }
                loader.broken_keys.insert(key);
            }
            Produced::Chunk(chunk, rows_read) => {
                loader.report.rows_read = rows_read as i64;
                progress(rows_read);
                loader.chunk(chunk, &mut writer).await?;
            }
            Produced::Done(rows_read) => {
                loader.report.rows_read = rows_read as i64;
                finished = true;
            }
        }
    }
    // A reader that stopped before the end (a panic) must not let what it
    // read so far pass for the whole file.
    if producer.await.is_err() || !finished {
        loader.bulk.rollback().await?;
        return Err(LoadError::Io(std::io::Error::other(
            "lettura del file interrotta",
        )));
    }
    if let Some(w) = writer.as_mut() {
        w.finish(open)?;
    }
    drop(writer);
    progress(loader.report.rows_read as u64);
    if loader.dropped_errors > 0 {
        loader.report.message = format!("{} altri errori non elencati", loader.dropped_errors);
    }
    let report = &mut loader.report;
    let refused = report.rows_read == 0
        || (loader.failed && layout.all_or_nothing)
        || report.rows_loaded == 0;
    report.status = if refused {
        "REJECTED"
    } else if loader.failed {
        "LOADED_WITH_ERRORS"
    } else {
        "LOADED"
    }
    .into();
    report.accepted = !refused;
    if report.message.is_empty() {
        report.message = match report.status.as_str() {
            "LOADED" => "fornitura caricata".into(),
            "LOADED_WITH_ERRORS" => {
                "fornitura caricata in parte: le righe scartate sono nel rapporto".into()
            }
            _ if report.rows_read == 0 => "file vuoto".into(),
            _ => "fornitura rifiutata: nessuna riga caricata (vedere il rapporto)".into(),
        };
    }
    if refused {
        report.positions_created = 0;
        report.positions_updated = 0;
        report.positions_cancelled = 0;
        report.rows_loaded = 0;
    }
    let status = report.status.clone();
    let unsaved = std::mem::take(&mut loader.unsaved);
    let mut record = loader.record_now(&status, 0, unsaved);
    record.accepted = !refused;
    record.resume_line = 0;
    record.outcome = (store_outcome && !refused).then(|| std::mem::take(&mut kept));
    let now = Utc::now();
    if refused {
        loader.bulk.rollback().await?;
        store
            .finish_supply_unwritten(ente, supply_id, &record, now)
            .await?;
    } else {
        match loader.bulk.commit(&record, now).await {
            Ok(()) => {}
            Err(StoreError::Conflict(detail)) => {
                // Another supply of the same file was accepted meanwhile
                // (the only conflict the final commit itself can meet).
                return match store.supply_of_file(ente, &record.file_hash).await? {
                    Some(s) if s.id != supply_id && s.record.accepted => {
                        Err(LoadError::Duplicate(s.id))
                    }
                    _ => Err(StoreError::Conflict(detail).into()),
                };
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(loader.report)
}

/// The per-row report as CSV (line, field, value, code, message).
pub fn report_csv(errors: &[SupplyError]) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .delimiter(b';')
        .from_writer(Vec::new());
    let _ = w.write_record(["riga", "campo", "valore", "codice", "messaggio"]);
    for e in errors {
        let _ = w.write_record([
            e.line.to_string(),
            e.field.clone(),
            e.value.clone(),
            e.code.clone(),
            e.message.clone(),
        ]);
    }
    w.into_inner().unwrap_or_default()
}

/// The layout `name` for `ente`: the Ente's own newest version, else the
/// built-in one.
pub async fn resolve_layout(store: &Store, ente: &str, name: &str) -> Result<Layout, ResolveError> {
    if let Some((_, text)) = store.layout(ente, name).await? {
        return Layout::from_toml(&text).map_err(|e| ResolveError::Invalid(e.to_string()));
    }
    match incasso_bus::builtin::get(name) {
        Some(Ok(l)) => Ok(l),
        Some(Err(e)) => Err(ResolveError::Invalid(e.to_string())),
        None => Err(ResolveError::Unknown(name.to_string())),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(
        "tracciato sconosciuto '{0}' (predefiniti: incasso-csv, govpay-csv, govpay-csv-documenti, govpay-json, mypay-1_4, gpd-json, legacy-fixed, regolarizzazioni-csv, tesoreria-csv)"
    )]
    Unknown(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}
