//! Loading a supply (*fornitura*): a management application's file, in its
//! own layout, into debt positions.
//!
//! One pass over the file, one group of rows (one position) in memory at a
//! time, every write in one transaction. A layout that wants all or nothing
//! gets exactly that: the first bad row stops the writing, the rest is still
//! checked so the report lists every problem, and the transaction rolls back.
//! A layout that accepts partial loads writes the good positions and reports
//! the others. Either way a kill -9 leaves nothing of the supply (the
//! transaction never committed) and the same file can simply be sent again;
//! once accepted, the same file (by SHA-256) is refused.

use chrono::Utc;
use incasso_bus::Layout;
use incasso_bus::layout::Format;
use incasso_bus::normalize::{self, Built, Context, Grouper, Op, Row, RowError};
use incasso_bus::read::{self, FileError, Record};
use incasso_core::position::DebtPosition;
use incasso_core::position::PositionStatus;
use incasso_store::{Store, StoreError, SupplyError, SupplyRecord};
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
    Ok((crate::auth::hex(&hasher.finalize()), size))
}

/// Writes the outcome file: the application's rows, in its own layout, with
/// the notice number (and IUV) of each filled in.
struct OutcomeWriter<'w> {
    out: &'w mut (dyn Write + Send),
    layout: &'w Layout,
    csv_header_written: bool,
    /// The delimited file's column names, taken from its first record (every
    /// record shares them): sorting them anew for each row was the outcome's
    /// main cost.
    csv_names: Vec<String>,
    /// JSON: (record, element of the exploded array, notice number, IUV),
    /// written into the original document at the end.
    json_marks: Vec<(usize, Option<usize>, String, String)>,
}

impl OutcomeWriter<'_> {
    fn record(&mut self, r: &Record, nav: &str, iuv: &str) -> std::io::Result<()> {
        let nav_col = self.layout.outcome.notice_number.as_deref();
        let iuv_col = self.layout.outcome.iuv.as_deref();
        match &self.layout.format {
            Format::Delimited {
                separator,
                quote,
                header,
                columns,
                ..
            } => {
                let mut w = csv::WriterBuilder::new()
                    .delimiter(*separator as u8)
                    .quote(*quote as u8)
                    .has_headers(false)
                    .from_writer(Vec::new());
                if self.csv_names.is_empty() {
                    self.csv_names = r.names();
                }
                let names = &self.csv_names;
                if *header && !self.csv_header_written {
                    let mut h: Vec<&str> = names.iter().map(String::as_str).collect();
                    for extra in [nav_col, iuv_col].into_iter().flatten() {
                        if !h.contains(&extra) {
                            h.push(extra);
                        }
                    }
                    w.write_record(&h)?;
                    self.csv_header_written = true;
                }
                let _ = columns;
                let mut values: Vec<String> = r.values.clone();
                for (col, v) in [(nav_col, nav), (iuv_col, iuv)] {
                    if let Some(col) = col {
                        match names.iter().position(|n| n == col) {
                            Some(i) => values[i] = v.to_string(),
                            None => values.push(v.to_string()),
                        }
                    }
                }
                w.write_record(&values)?;
                let bytes = w
                    .into_inner()
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                self.out.write_all(&encode(&bytes, self.layout.encoding))
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
                let line = serde_json::json!({"line": r.line, "noticeNumber": nav, "iuv": iuv});
                writeln!(self.out, "{line}")
            }
        }
    }
}

impl OutcomeWriter<'_> {
    /// JSON supplies come back as the same document, with the notice number
    /// and IUV written into each record (or exploded element) where the
    /// layout's `outcome` says (`@.name` for a field of the element).
    fn finish(
        &mut self,
        open: &(dyn Fn() -> std::io::Result<Box<dyn Read + Send>> + Sync),
    ) -> std::io::Result<()> {
        let Format::Json { records, explode } = &self.layout.format else {
            return Ok(());
        };
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

struct Loader<'a> {
    store: &'a Store,
    default_service: Option<String>,
    ente: incasso_core::ente::Ente,
    services: HashMap<String, incasso_core::catalogue::Service>,
    bulk: incasso_store::Bulk,
    report: LoadReport,
    failed: bool,
    all_or_nothing: bool,
    seen_iuvs: HashSet<String>,
    dropped_errors: usize,
    /// Keys with a row refused before grouping: their positions are refused.
    broken_keys: HashSet<String>,
}

/// Groups checked and written together: one query for their keys, one
/// for their IUVs, multi-row inserts.
const CHUNK: usize = 500;

type Group = Vec<(Row, Record)>;

impl Loader<'_> {
    fn reject(&mut self, mut errors: Vec<RowError>, rows: usize) {
        self.report.rows_rejected += rows as i64;
        self.failed = true;
        let room = MAX_REPORTED_ERRORS.saturating_sub(self.report.errors.len());
        if errors.len() > room {
            self.dropped_errors += errors.len() - room;
            errors.truncate(room);
        }
        self.report.errors.extend(errors);
    }

    fn writing(&self) -> bool {
        !(self.failed && self.all_or_nothing)
    }

    /// Checks and writes a chunk of groups; writes their records to the
    /// outcome, in file order, with their notice numbers.
    async fn chunk(
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
            let rows: Vec<Row> = g.iter().map(|(r, _)| r.clone()).collect();
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
        // 4. Write.
        let mut inserts: Vec<(usize, DebtPosition)> = Vec::new();
        for (k, slot) in built.iter_mut().enumerate() {
            let Some(b) = slot.as_mut() else { continue };
            self.report.rows_loaded += groups[k].len() as i64;
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
                    }
                }
                Op::Insert => {
                    self.report.positions_created += 1;
                    inserts.push((k, std::mem::replace(&mut b.position, placeholder())));
                }
            }
        }
        if self.writing() && !inserts.is_empty() {
            let mut positions: Vec<DebtPosition> = inserts
                .iter_mut()
                .map(|(_, p)| std::mem::replace(p, placeholder()))
                .collect();
            self.bulk.insert_many(&mut positions, now).await?;
            for ((k, slot), p) in inserts.iter_mut().zip(positions) {
                let _ = slot;
                if let Some(b) = built[*k].as_mut() {
                    b.position = p;
                }
            }
        }
        // 5. The outcome, in file order.
        if let Some(w) = outcome.as_mut() {
            for (k, g) in groups.iter().enumerate() {
                let navs: Vec<(String, String)> = match &built[k] {
                    Some(b) if self.writing() => b
                        .position
                        .options
                        .iter()
                        .map(|o| {
                            (
                                o.notice_number
                                    .as_ref()
                                    .map(|n| n.as_str().to_string())
                                    .unwrap_or_default(),
                                o.iuv.clone().unwrap_or_default(),
                            )
                        })
                        .collect(),
                    _ => Vec::new(),
                };
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

/// Loads a supply. `open` is called twice (hash, then load): the file is
/// streamed, never held whole (JSON layouts excepted).
#[allow(clippy::too_many_arguments)]
pub async fn load(
    store: &Store,
    ente: &str,
    layout: &Layout,
    default_service: Option<&str>,
    file_name: &str,
    open: &(dyn Fn() -> std::io::Result<Box<dyn Read + Send>> + Sync),
    outcome: Option<&mut (dyn Write + Send)>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<LoadReport, LoadError> {
    let started = Utc::now();
    let (hash, size) = file_hash(open()?)?;
    if let Some(id) = store.supply_by_hash(ente, &hash).await? {
        return Err(LoadError::Duplicate(id));
    }
    let ente_data = store.get_ente(ente).await?;
    let services = store
        .list_services(ente)
        .await?
        .into_iter()
        .map(|s| (s.code.clone(), s))
        .collect();
    let records = read::records(layout, open()?)?;
    let mut loader = Loader {
        store,
        default_service: default_service.map(str::to_string),
        ente: ente_data,
        services,
        bulk: store.bulk(ente, &layout.name).await?,
        report: LoadReport::default(),
        failed: false,
        all_or_nothing: layout.all_or_nothing,
        seen_iuvs: HashSet::new(),
        dropped_errors: 0,
        broken_keys: HashSet::new(),
    };
    let mut writer = outcome.map(|out| OutcomeWriter {
        out,
        layout,
        csv_header_written: false,
        csv_names: Vec::new(),
        json_marks: Vec::new(),
    });
    // Reading, decoding, the layout's rules and grouping run on a thread of
    // their own, a chunk ahead of the checks and writes: on two cores the
    // file is parsed while the database works.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Produced>(2);
    let producer_layout = layout.clone();
    let producer = tokio::task::spawn_blocking(move || produce(&producer_layout, records, &tx));
    let mut finished = false;
    while let Some(message) = rx.recv().await {
        match message {
            Produced::Rejected(errors) => loader.reject(errors, 1),
            Produced::RejectedRow(errors, key) => {
                loader.reject(errors, 1);
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
    progress(loader.report.rows_read as u64);
    let mut report = loader.report;
    if loader.dropped_errors > 0 {
        report.message = format!("{} altri errori non elencati", loader.dropped_errors);
    }
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
    let record = SupplyRecord {
        layout: layout.name.clone(),
        file_name: file_name.to_string(),
        file_hash: hash,
        size_bytes: size as i64,
        status: report.status.clone(),
        accepted: report.accepted,
        rows_read: report.rows_read,
        rows_loaded: if refused { 0 } else { report.rows_loaded },
        rows_rejected: report.rows_rejected,
        positions_created: if refused { 0 } else { report.positions_created },
        positions_updated: if refused { 0 } else { report.positions_updated },
        positions_cancelled: if refused {
            0
        } else {
            report.positions_cancelled
        },
        started_at: started,
        message: report.message.clone(),
        outcome: None,
        errors: report
            .errors
            .iter()
            .map(|e| SupplyError {
                line: e.line as i64,
                field: e.field.clone(),
                value: e.value.chars().take(200).collect(),
                code: e.code.to_string(),
                message: e.message.clone(),
            })
            .collect(),
    };
    let now = Utc::now();
    let id = if refused {
        loader.bulk.rollback().await?;
        report.positions_created = 0;
        report.positions_updated = 0;
        report.positions_cancelled = 0;
        report.rows_loaded = 0;
        loader
            .store
            .record_refused_supply(ente, &record, now)
            .await?
    } else {
        match loader.bulk.commit(&record, now).await {
            Ok(id) => id,
            Err(StoreError::Conflict(_)) => {
                // Another process accepted the same file meanwhile.
                let id = store
                    .supply_by_hash(ente, &record.file_hash)
                    .await?
                    .unwrap_or(0);
                return Err(LoadError::Duplicate(id));
            }
            Err(e) => return Err(e.into()),
        }
    };
    report.supply_id = Some(id);
    Ok(report)
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
        "tracciato sconosciuto '{0}' (predefiniti: incasso-csv, govpay-csv, govpay-json, mypay-1_4, gpd-json, legacy-fixed)"
    )]
    Unknown(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}
