//! Streaming readers: a file in, records out, one at a time, with the line
//! each came from. Bytes are decoded per field or per line with the
//! layout's encoding, so a wrong encoding is reported on the row where it
//! shows, and memory stays flat whatever the file's size (JSON excepted: a
//! JSON document is read whole, and is limited in size by the caller).

use crate::layout::{Encoding, Format, Layout};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

/// One record: its line (1-based, the first line of the record) and its
/// values by source field name.
#[derive(Debug, Clone)]
pub struct Record {
    pub line: usize,
    names: Arc<HashMap<String, usize>>,
    pub values: Vec<String>,
}

impl Record {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.names
            .get(name)
            .and_then(|i| self.values.get(*i))
            .map(String::as_str)
    }

    pub fn has_column(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }

    /// The source field names, in file order.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<(&String, &usize)> = self.names.iter().collect();
        v.sort_by_key(|(_, i)| **i);
        v.into_iter().map(|(n, _)| n.clone()).collect()
    }
}

/// A record that could not be read; the file goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    pub line: usize,
    pub code: &'static str,
    pub message: String,
}

/// The file is not the declared layout at all: refused whole.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("il file non corrisponde al tracciato '{layout}': {reason}")]
    WrongLayout { layout: String, reason: String },
    #[error("errore di lettura: {0}")]
    Io(String),
}

pub type RecordResult = Result<Record, ReadError>;

/// Decodes one field or line; `None` when the bytes are not in `encoding`
/// (only possible for UTF-8: every byte is some character in the others).
pub fn decode(bytes: &[u8], encoding: Encoding) -> Option<String> {
    match encoding {
        Encoding::Utf8 => std::str::from_utf8(bytes).map(str::to_string).ok(),
        Encoding::Windows1252 => Some(
            encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(bytes)
                .0
                .into_owned(),
        ),
        // True ISO-8859-1: every byte is the code point of the same value.
        // (encoding_rs, following the web, maps this label to Windows-1252,
        // which differs in 0x80-0x9F.)
        Encoding::Iso8859_1 => Some(bytes.iter().map(|b| char::from(*b)).collect()),
        Encoding::Iso8859_15 => Some(
            encoding_rs::ISO_8859_15
                .decode_without_bom_handling(bytes)
                .0
                .into_owned(),
        ),
    }
}

fn wrong_encoding(line: usize, encoding: Encoding) -> ReadError {
    ReadError {
        line,
        code: "WRONG_ENCODING",
        message: format!(
            "codifica errata: la riga non è {encoding:?}; il file è forse Windows-1252?"
        ),
    }
}

/// Skips a UTF-8 byte-order mark, which some Windows tools write.
fn skip_bom<R: Read + Send + 'static>(reader: R) -> std::io::Result<Box<dyn BufRead + Send>> {
    let mut buf = BufReader::with_capacity(256 * 1024, reader);
    let start = buf.fill_buf()?;
    if start.starts_with(&[0xEF, 0xBB, 0xBF]) {
        buf.consume(3);
    }
    Ok(Box::new(buf))
}

/// Opens the records of `reader` as `layout` says. Header problems (a
/// delimited file whose header lacks the layout's columns) refuse the file.
pub fn records<R: Read + Send + 'static>(
    layout: &Layout,
    reader: R,
) -> Result<Box<dyn Iterator<Item = RecordResult> + Send>, FileError> {
    match &layout.format {
        Format::Delimited {
            separator,
            quote,
            header,
            columns,
            zipped: true,
        } => {
            let inner = unzip_single(reader, &layout.name)?;
            let reader =
                skip_bom(std::io::Cursor::new(inner)).map_err(|e| FileError::Io(e.to_string()))?;
            delimited(layout, reader, *separator, *quote, *header, columns)
        }
        Format::Spreadsheet { sheet, header_row } => {
            spreadsheet(layout, reader, sheet.as_deref(), *header_row)
        }
        _ => records_plain(layout, reader),
    }
}

fn records_plain<R: Read + Send + 'static>(
    layout: &Layout,
    reader: R,
) -> Result<Box<dyn Iterator<Item = RecordResult> + Send>, FileError> {
    let reader = skip_bom(reader).map_err(|e| FileError::Io(e.to_string()))?;
    match &layout.format {
        Format::Delimited {
            separator,
            quote,
            header,
            columns,
            ..
        } => delimited(layout, reader, *separator, *quote, *header, columns),
        Format::Spreadsheet { .. } => unreachable!("spreadsheets are read by records()"),
        Format::Fixed {
            columns,
            skip_lines,
        } => {
            // Trailing blanks are often trimmed by the tools files pass
            // through: a line only needs to reach the start of the last
            // column the layout reads; the rest is padded with spaces.
            let wanted = wanted_columns(layout);
            let required = columns
                .iter()
                .filter(|c| wanted.contains(&c.name))
                .map(|c| c.start)
                .max()
                .unwrap_or(0);
            Ok(fixed(
                layout.encoding,
                reader,
                columns.clone(),
                *skip_lines,
                required,
            ))
        }
        Format::Json { records, explode } => json(layout, reader, records, explode.as_deref()),
    }
}

/// Columns the layout reads, for the wrong-layout check.
fn wanted_columns(layout: &Layout) -> Vec<String> {
    let mut v: Vec<String> = layout.key.clone();
    for rule in layout.fields.values() {
        v.extend(rule.column.iter().cloned());
        v.extend(rule.join.iter().cloned());
        v.extend(rule.choose_by.iter().cloned());
        v.extend(rule.cases.values().cloned());
    }
    if let Some(op) = &layout.operation {
        v.push(op.column.clone());
    }
    v.sort();
    v.dedup();
    v
}

fn delimited(
    layout: &Layout,
    reader: Box<dyn BufRead + Send>,
    separator: char,
    quote: char,
    header: bool,
    columns: &[String],
) -> Result<Box<dyn Iterator<Item = RecordResult> + Send>, FileError> {
    let wrong = |reason: String| FileError::WrongLayout {
        layout: layout.name.clone(),
        reason,
    };
    if !separator.is_ascii() || !quote.is_ascii() {
        return Err(wrong("separatore e virgolette devono essere ASCII".into()));
    }
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(separator as u8)
        .quote(quote as u8)
        .has_headers(header)
        .flexible(true)
        .from_reader(reader);
    let encoding = layout.encoding;
    let names: Vec<String> = if header {
        let h = csv
            .byte_headers()
            .map_err(|e| FileError::Io(e.to_string()))?
            .clone();
        h.iter()
            .map(|f| decode(f, encoding).map(|s| s.trim().to_string()))
            .collect::<Option<_>>()
            .ok_or_else(|| wrong("intestazione con codifica errata".into()))?
    } else {
        columns.to_vec()
    };
    // A file whose header has none of the columns the layout reads is not
    // this layout (a wrong separator gives exactly this).
    let wanted = wanted_columns(layout);
    let present = wanted.iter().filter(|w| names.contains(w)).count();
    if header && present == 0 {
        return Err(wrong(format!(
            "l'intestazione non contiene nessuna delle colonne attese ({}); separatore '{separator}'",
            wanted
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let missing_keys: Vec<&String> = layout.key.iter().filter(|k| !names.contains(k)).collect();
    if header && !missing_keys.is_empty() {
        return Err(wrong(format!(
            "mancano le colonne chiave {}",
            missing_keys
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let index: Arc<HashMap<String, usize>> = Arc::new(
        names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect(),
    );
    let expected = names.len();
    let mut records = csv.into_byte_records();
    Ok(Box::new(std::iter::from_fn(move || {
        let next = records.next()?;
        Some(match next {
            Err(e) => {
                let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
                let message = match e.kind() {
                    csv::ErrorKind::UnequalLengths { len, .. } => {
                        format!("riga irregolare: {len} campi invece di {expected}")
                    }
                    _ => format!("riga illeggibile: {e}"),
                };
                Err(ReadError {
                    line,
                    code: "RAGGED_LINE",
                    message,
                })
            }
            Ok(r) => {
                let line = r.position().map(|p| p.line() as usize).unwrap_or(0);
                if r.len() != expected && expected > 0 {
                    return Some(Err(ReadError {
                        line,
                        code: "RAGGED_LINE",
                        message: format!("riga irregolare: {} campi invece di {expected}", r.len()),
                    }));
                }
                if r.iter().any(|f| f.contains(&0)) {
                    // PostgreSQL refuses NUL in text; no supply needs it.
                    return Some(Err(ReadError {
                        line,
                        code: "BAD_CHARACTER",
                        message: "la riga contiene un carattere nullo (NUL)".into(),
                    }));
                }
                match r
                    .iter()
                    .map(|f| decode(f, encoding))
                    .collect::<Option<Vec<_>>>()
                {
                    Some(values) => Ok(Record {
                        line,
                        names: index.clone(),
                        values,
                    }),
                    None => Err(wrong_encoding(line, encoding)),
                }
            }
        })
    })))
}

fn fixed(
    encoding: Encoding,
    reader: Box<dyn BufRead + Send>,
    columns: Vec<crate::layout::FixedColumn>,
    skip_lines: usize,
    required: usize,
) -> Box<dyn Iterator<Item = RecordResult> + Send> {
    let index: Arc<HashMap<String, usize>> = Arc::new(
        columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect(),
    );
    let width = columns.iter().map(|c| c.end).max().unwrap_or(0);
    let mut lines = reader.split(b'\n').enumerate();
    Box::new(std::iter::from_fn(move || {
        loop {
            let (n, line) = lines.next()?;
            let line_no = n + 1;
            let mut bytes = match line {
                Ok(b) => b,
                Err(e) => {
                    return Some(Err(ReadError {
                        line: line_no,
                        code: "IO",
                        message: e.to_string(),
                    }));
                }
            };
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
            if line_no <= skip_lines || bytes.iter().all(|b| *b == b' ') {
                continue;
            }
            if bytes.contains(&0) {
                return Some(Err(ReadError {
                    line: line_no,
                    code: "BAD_CHARACTER",
                    message: "la riga contiene un carattere nullo (NUL)".into(),
                }));
            }
            let Some(text) = decode(&bytes, encoding) else {
                return Some(Err(wrong_encoding(line_no, encoding)));
            };
            let mut chars: Vec<char> = text.chars().collect();
            if chars.len() < required {
                return Some(Err(ReadError {
                    line: line_no,
                    code: "TRUNCATED_LINE",
                    message: format!(
                        "riga troncata: {} caratteri, ne servono almeno {required}",
                        chars.len()
                    ),
                }));
            }
            chars.resize(chars.len().max(width), ' ');
            let values = columns
                .iter()
                .map(|c| chars[c.start - 1..c.end].iter().collect::<String>())
                .collect();
            return Some(Ok(Record {
                line: line_no,
                names: index.clone(),
                values,
            }));
        }
    }))
}

fn flatten(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, v, out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{prefix}.{i}"), v, out);
            }
        }
        serde_json::Value::Null => {}
        serde_json::Value::String(s) => out.push((prefix.to_string(), s.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

fn elements_of<'a>(item: &'a serde_json::Value, path: Option<&str>) -> Vec<&'a serde_json::Value> {
    let Some(path) = path else { return Vec::new() };
    let mut n = Some(item);
    for part in path.split('.') {
        n = n.and_then(|v| v.get(part));
    }
    n.and_then(|v| v.as_array())
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

/// Formats that must be read whole (JSON, spreadsheets, ZIPs) are limited to
/// this size; line-based formats stream and have no limit.
pub const MAX_WHOLE_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Reads a whole file, refusing one larger than [`MAX_WHOLE_FILE_BYTES`].
fn read_whole(reader: impl Read, layout: &str) -> Result<Vec<u8>, FileError> {
    read_whole_limited(reader, layout, MAX_WHOLE_FILE_BYTES)
}

fn read_whole_limited(reader: impl Read, layout: &str, limit: u64) -> Result<Vec<u8>, FileError> {
    let mut bytes = Vec::new();
    reader
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| FileError::Io(e.to_string()))?;
    if bytes.len() as u64 > limit {
        return Err(FileError::WrongLayout {
            layout: layout.to_string(),
            reason: format!(
                "file troppo grande per questo formato (oltre {} MiB): usare un tracciato a righe",
                limit >> 20
            ),
        });
    }
    Ok(bytes)
}

fn elements_index(all: &[&serde_json::Value], e: &serde_json::Value) -> Option<usize> {
    all.iter().position(|x| std::ptr::eq(*x, e))
}

fn json(
    layout: &Layout,
    mut reader: Box<dyn BufRead + Send>,
    records_path: &str,
    explode: Option<&str>,
) -> Result<Box<dyn Iterator<Item = RecordResult> + Send>, FileError> {
    let wrong = |reason: String| FileError::WrongLayout {
        layout: layout.name.clone(),
        reason,
    };
    let bytes = read_whole(&mut reader, &layout.name)?;
    let text = String::from_utf8(bytes).map_err(|_| wrong("il file non è testo UTF-8".into()))?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| wrong(format!("JSON non valido: {e}")))?;
    let mut node = &doc;
    for part in records_path.split('.').filter(|p| !p.is_empty()) {
        node = node
            .get(part)
            .ok_or_else(|| wrong(format!("manca '{records_path}'")))?;
    }
    let items = node
        .as_array()
        .ok_or_else(|| wrong(format!("'{records_path}' non è un elenco")))?
        .clone();
    let explode = explode.map(str::to_string);
    let mut out: Vec<RecordResult> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let mut base = Vec::new();
        flatten("", item, &mut base);
        let elements: Vec<Option<&serde_json::Value>> = match &explode {
            None => vec![None],
            Some(path) => {
                let mut n = Some(item);
                for part in path.split('.') {
                    n = n.and_then(|v| v.get(part));
                }
                match n.and_then(|v| v.as_array()) {
                    Some(a) if !a.is_empty() => a.iter().map(Some).collect(),
                    _ => {
                        out.push(Err(ReadError {
                            line: i + 1,
                            code: "MISSING_FIELD",
                            message: format!("elemento {}: '{path}' vuoto o assente", i + 1),
                        }));
                        continue;
                    }
                }
            }
        };
        for element in elements {
            let mut fields = base.clone();
            if let Some(e) = element {
                flatten("@", e, &mut fields);
            }
            if let Some(k) =
                element.and_then(|e| elements_index(&elements_of(item, explode.as_deref()), e))
            {
                // The element's 1-based position, for layouts that number
                // installments by order.
                fields.push(("@index".into(), (k + 1).to_string()));
            }
            let names: HashMap<String, usize> = fields
                .iter()
                .enumerate()
                .map(|(k, (n, _))| (n.clone(), k))
                .collect();
            out.push(Ok(Record {
                // JSON has no useful lines: the record's position in the list.
                line: i + 1,
                names: Arc::new(names),
                values: fields.into_iter().map(|(_, v)| v).collect(),
            }));
        }
    }
    Ok(Box::new(out.into_iter()))
}

/// Limits on what a ZIP (an XLSX, an ODS, a zipped supply) may expand to:
/// a few KiB that inflate to gigabytes (a zip bomb) are refused before any
/// byte is inflated, from the sizes the archive itself declares; and the
/// declared sizes are enforced while reading.
pub const MAX_UNZIPPED_BYTES: u64 = 512 * 1024 * 1024;
const MAX_RATIO: u64 = 200;
const MAX_ENTRIES: usize = 2_000;

fn zip_guard(bytes: &[u8], layout: &str) -> Result<(), FileError> {
    let wrong = |reason: String| FileError::WrongLayout {
        layout: layout.to_string(),
        reason,
    };
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| wrong(format!("non è un archivio ZIP valido: {e}")))?;
    if archive.len() > MAX_ENTRIES {
        return Err(wrong(format!(
            "archivio con troppe voci ({})",
            archive.len()
        )));
    }
    let mut total = 0u64;
    for i in 0..archive.len() {
        let entry = archive
            .by_index_raw(i)
            .map_err(|e| wrong(format!("archivio illeggibile: {e}")))?;
        let (size, packed) = (entry.size(), entry.compressed_size().max(1));
        total = total.saturating_add(size);
        if size / packed > MAX_RATIO && size > 1024 * 1024 {
            return Err(wrong(format!(
                "archivio sospetto (zip bomb): '{}' si espande {}:1",
                entry.name().map(|n| n.into_owned()).unwrap_or_default(),
                size / packed
            )));
        }
    }
    if total > MAX_UNZIPPED_BYTES {
        return Err(wrong(format!(
            "archivio troppo grande una volta espanso ({} MiB)",
            total >> 20
        )));
    }
    // The declared sizes are the archive's word; calamine inflates
    // spreadsheet entries itself, without a cap. So inflate every entry once
    // here, into nothing and never past its declared size (+1 to notice a
    // lie): memory stays flat and the work is bounded by the total above.
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| wrong(format!("archivio illeggibile: {e}")))?;
        let declared = entry.size();
        let inflated = std::io::copy(&mut (&mut entry).take(declared + 1), &mut std::io::sink())
            .map_err(|e| wrong(format!("archivio illeggibile: {e}")))?;
        if inflated > declared {
            return Err(wrong(format!(
                "l'archivio dichiara dimensioni false per '{}'",
                entry.name().map(|n| n.into_owned()).unwrap_or_default()
            )));
        }
    }
    Ok(())
}

fn unzip_single<R: Read>(mut reader: R, layout: &str) -> Result<Vec<u8>, FileError> {
    let bytes = read_whole(&mut reader, layout)?;
    unzip_one(bytes, layout).map(|(_, content)| content)
}

/// The one file of a ZIP archive (`what` names the archive's kind in
/// errors): its name and content, under the same guards as a zipped supply
/// (no zip bomb, no false sizes, at most [`MAX_UNZIPPED_BYTES`]).
pub fn unzip_one(bytes: Vec<u8>, what: &str) -> Result<(String, Vec<u8>), FileError> {
    let wrong = |reason: String| FileError::WrongLayout {
        layout: what.to_string(),
        reason,
    };
    zip_guard(&bytes, what)?;
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| wrong(e.to_string()))?;
    let files: Vec<usize> = (0..archive.len())
        .filter(|i| archive.by_index_raw(*i).is_ok_and(|e| e.is_file()))
        .collect();
    if files.len() != 1 {
        return Err(wrong(format!(
            "l'archivio deve contenere un solo file, ne contiene {}",
            files.len()
        )));
    }
    let mut entry = archive
        .by_index(files[0])
        .map_err(|e| wrong(e.to_string()))?;
    let name = entry.name().map(|n| n.into_owned()).unwrap_or_default();
    let declared = entry.size();
    let mut out = Vec::with_capacity(declared.min(MAX_UNZIPPED_BYTES) as usize);
    // Never more than declared (and allowed), whatever the stream says.
    (&mut entry)
        .take(declared.min(MAX_UNZIPPED_BYTES) + 1)
        .read_to_end(&mut out)
        .map_err(|e| wrong(format!("archivio illeggibile: {e}")))?;
    if out.len() as u64 > declared {
        return Err(wrong("l'archivio dichiara dimensioni false".into()));
    }
    Ok((name, out))
}

fn cell_text(cell: &calamine::Data) -> String {
    use calamine::{Data, DataType};
    match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        // Shortest exact form: an amount with more than two decimals is
        // then refused by the amount rule, never rounded silently.
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(_) | Data::DateTimeIso(_) => cell
            .as_datetime()
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| cell.to_string()),
        other => other.to_string(),
    }
}

fn spreadsheet<R: Read>(
    layout: &Layout,
    mut reader: R,
    sheet: Option<&str>,
    header_row: usize,
) -> Result<Box<dyn Iterator<Item = RecordResult> + Send>, FileError> {
    use calamine::Reader;
    let wrong = |reason: String| FileError::WrongLayout {
        layout: layout.name.clone(),
        reason,
    };
    let bytes = read_whole(&mut reader, &layout.name)?;
    zip_guard(&bytes, &layout.name)?;
    let mut book = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes))
        .map_err(|e| wrong(format!("non è un foglio XLSX o ODS: {e}")))?;
    let name = match sheet {
        Some(s) => s.to_string(),
        None => book
            .sheet_names()
            .first()
            .cloned()
            .ok_or_else(|| wrong("nessun foglio".into()))?,
    };
    let range = book
        .worksheet_range(&name)
        .map_err(|e| wrong(format!("foglio '{name}': {e}")))?;
    let first_row = range.start().map(|(r, _)| r as usize).unwrap_or(0);
    let rows: Vec<Vec<String>> = range
        .rows()
        .map(|r| r.iter().map(cell_text).collect())
        .collect();
    let header_index = header_row.saturating_sub(1).saturating_sub(first_row);
    let names: Vec<String> = rows
        .get(header_index)
        .ok_or_else(|| wrong(format!("manca la riga d'intestazione {header_row}")))?
        .iter()
        .map(|s| s.trim().to_string())
        .collect();
    if !wanted_columns(layout).iter().any(|w| names.contains(w)) {
        return Err(wrong(
            "l'intestazione del foglio non contiene nessuna delle colonne attese".into(),
        ));
    }
    let index: Arc<HashMap<String, usize>> = Arc::new(
        names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect(),
    );
    let records: Vec<RecordResult> = rows
        .into_iter()
        .enumerate()
        .skip(header_index + 1)
        .filter(|(_, r)| r.iter().any(|c| !c.trim().is_empty()))
        .map(|(i, values)| {
            Ok(Record {
                line: first_row + i + 1,
                names: index.clone(),
                values,
            })
        })
        .collect();
    Ok(Box::new(records.into_iter()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_file_formats_have_a_size_limit() {
        let small = read_whole_limited(&b"0123456789"[..], "x", 10).unwrap();
        assert_eq!(small.len(), 10);
        let err = read_whole_limited(&b"0123456789A"[..], "x", 10).unwrap_err();
        assert!(err.to_string().contains("troppo grande"), "{err}");
    }

    #[test]
    fn an_archive_that_lies_about_its_sizes_is_refused() {
        use std::io::Write;
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        w.start_file("xl/worksheets/sheet1.xml", opts).unwrap();
        w.write_all(&[b'a'; 100_000]).unwrap();
        let mut bytes = w.finish().unwrap().into_inner();
        assert!(zip_guard(&bytes, "x").is_ok(), "an honest archive passes");
        // Claim 10 bytes in both the local header and the central directory.
        let claim = 10u32.to_le_bytes();
        assert_eq!(&bytes[..4], b"PK\x03\x04");
        bytes[22..26].copy_from_slice(&claim);
        let central = bytes
            .windows(4)
            .position(|w| w == b"PK\x01\x02")
            .expect("central directory");
        bytes[central + 24..central + 28].copy_from_slice(&claim);
        // Refused before calamine sees it, whichever notices first: the zip
        // crate's own reader or the count against the declared size.
        let err = zip_guard(&bytes, "x").unwrap_err().to_string();
        assert!(
            err.contains("dimensioni false") || err.contains("declared"),
            "{err}"
        );
    }

    #[test]
    fn latin1_is_byte_for_byte_and_utf8_is_checked() {
        assert_eq!(
            decode(&[0x80, 0xE9], Encoding::Iso8859_1).unwrap(),
            "\u{80}é"
        );
        assert_eq!(decode(&[0x80, 0xE9], Encoding::Windows1252).unwrap(), "€é");
        assert_eq!(decode(&[0xA4], Encoding::Iso8859_15).unwrap(), "€");
        assert!(decode(&[0xE9], Encoding::Utf8).is_none());
    }
}
