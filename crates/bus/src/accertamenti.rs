//! A year's budget of accertamenti as a clerk exports it from a
//! spreadsheet: a CSV separated by `;`, `,` or tabs, in UTF-8 (with or
//! without BOM) or Windows-1252, with Italian or English column names.
//! Taken whole or not at all: every bad row is reported with its line and
//! column (`riga 3, capitolo`).
//!
//! Here rather than in the application layer, which loads the result, so
//! that it is fuzzed (`fuzz/fuzz_targets/accertamenti_csv.rs`) with the
//! other readers of files.

use incasso_core::FieldError;
use incasso_core::accertamento::Accertamento;
use incasso_core::error::codes;

/// The most rows a CSV of accertamenti may have: an Ente's budget has a
/// few hundred, and a bigger file is a mistake, not a budget.
pub const MAX_ROWS: usize = 10_000;

/// A refused file: every problem found in it, each naming its line and
/// column, `riga 1 (intestazione)` or `file`. Nothing of the file is kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", refused_detail(.0.len()))]
pub struct CsvRefused(pub Vec<FieldError>);

fn refused_detail(n: usize) -> String {
    if n == 1 {
        "il file ha un errore: non è stato caricato nulla".to_string()
    } else {
        format!("il file ha {n} errori: non è stato caricato nulla")
    }
}

/// A column of the accertamenti CSV: its Italian name (as the back
/// office exports it) and the field of `Accertamento::validate` it fills.
const COLUMNS: &[(&str, &str, &[&str])] = &[
    (
        "anno",
        "year",
        &["anno", "year", "anno di bilancio", "esercizio"],
    ),
    ("codice", "code", &["codice", "code", "codice accertamento"]),
    (
        "descrizione",
        "description",
        &["descrizione", "description"],
    ),
    ("capitolo", "chapter", &["capitolo", "chapter"]),
    ("articolo", "article", &["articolo", "article"]),
    (
        "codice SIOPE",
        "siopeCode",
        &["codice siope", "siope", "siopecode", "siope_code"],
    ),
    ("attivo", "active", &["attivo", "active", "stato"]),
];

/// The file as rows of accertamenti, or every problem found in it. `year`
/// is the budget year of rows without an `anno` column.
pub fn parse_csv(data: &[u8], year: Option<i32>) -> Result<Vec<Accertamento>, CsvRefused> {
    let mut problems: Vec<FieldError> = Vec::new();
    let fail = |problems: &mut Vec<FieldError>, field: String, message: String| {
        problems.push(FieldError {
            field,
            code: codes::BAD_FORMAT,
            message,
        })
    };
    let data = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    // Excel on Windows saves "CSV" in Windows-1252: read it as such when
    // it is not UTF-8, so accented descriptions arrive as written.
    let text = match std::str::from_utf8(data) {
        Ok(t) => t.to_string(),
        Err(_) => encoding_rs::WINDOWS_1252.decode(data).0.into_owned(),
    };
    let first = text.lines().next().unwrap_or("");
    let delimiter = [b';', b',', b'\t']
        .into_iter()
        .max_by_key(|d| first.bytes().filter(|b| b == d).count())
        .unwrap_or(b';');
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => return Err(CsvRefused(vec![header_problem(format!("{e}"))])),
    };
    // Where each known column is in the file.
    let mut at: Vec<Option<usize>> = vec![None; COLUMNS.len()];
    for (i, h) in headers.iter().enumerate() {
        let name = h.trim().to_lowercase();
        if name.is_empty() {
            continue;
        }
        match COLUMNS
            .iter()
            .position(|(_, _, names)| names.contains(&name.as_str()))
        {
            Some(c) if at[c].is_none() => at[c] = Some(i),
            Some(_) => problems.push(header_problem(format!("colonna «{}» ripetuta", h.trim()))),
            None => problems.push(header_problem(format!(
                "colonna «{}» non prevista (previste: anno, codice, descrizione, capitolo, articolo, codice SIOPE, attivo)",
                h.trim()
            ))),
        }
    }
    for (c, (name, _, _)) in COLUMNS.iter().enumerate() {
        let required = matches!(*name, "codice" | "descrizione" | "capitolo")
            || (*name == "anno" && year.is_none());
        if required && at[c].is_none() {
            problems.push(header_problem(format!("manca la colonna «{name}»")));
        }
    }
    if !problems.is_empty() {
        return Err(CsvRefused(problems));
    }
    let mut list: Vec<Accertamento> = Vec::new();
    let mut lines: Vec<u64> = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                fail(
                    &mut problems,
                    format!("riga {line}"),
                    "riga illeggibile (virgolette non chiuse?)".into(),
                );
                break;
            }
        };
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if list.len() >= MAX_ROWS {
            fail(
                &mut problems,
                format!("riga {line}"),
                format!("il file supera le {MAX_ROWS} righe: dividerlo"),
            );
            break;
        }
        let cell = |c: usize| -> Option<String> {
            at[c]
                .and_then(|i| record.get(i))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let row_year = match cell(0) {
            Some(y) => match y.parse::<i32>() {
                Ok(y) => y,
                Err(_) => {
                    fail(
                        &mut problems,
                        format!("riga {line}, anno"),
                        format!("«{y}» non è un anno (es. 2026)"),
                    );
                    continue;
                }
            },
            None => match year {
                Some(y) => y,
                None => {
                    fail(
                        &mut problems,
                        format!("riga {line}, anno"),
                        "obbligatorio".into(),
                    );
                    continue;
                }
            },
        };
        let active = match cell(6).map(|v| v.to_lowercase()) {
            None => true,
            Some(v) => match v.as_str() {
                "sì" | "si" | "s" | "1" | "x" | "true" | "vero" | "attivo" => true,
                "no" | "n" | "0" | "false" | "falso" | "non attivo" | "disattivo" => false,
                _ => {
                    fail(
                        &mut problems,
                        format!("riga {line}, attivo"),
                        format!("«{v}»: indicare sì o no"),
                    );
                    continue;
                }
            },
        };
        let acc = Accertamento {
            year: row_year,
            code: cell(1).unwrap_or_default(),
            description: cell(2).unwrap_or_default(),
            chapter: cell(3).unwrap_or_default(),
            article: cell(4),
            siope_code: cell(5),
            active,
        };
        if let Err(invalid) = acc.validate() {
            for e in invalid.0 {
                let column = COLUMNS
                    .iter()
                    .find(|(_, field, _)| *field == e.field)
                    .map(|(name, _, _)| *name)
                    .unwrap_or("");
                problems.push(FieldError {
                    field: format!("riga {line}, {column}"),
                    code: e.code,
                    message: e.message,
                });
            }
            continue;
        }
        if let Some(i) = list
            .iter()
            .position(|a| a.year == acc.year && a.code == acc.code)
        {
            fail(
                &mut problems,
                format!("riga {line}, codice"),
                format!(
                    "{}/{} ripetuto: è già alla riga {}",
                    acc.year, acc.code, lines[i]
                ),
            );
            continue;
        }
        list.push(acc);
        lines.push(line);
    }
    if problems.is_empty() && list.is_empty() {
        fail(
            &mut problems,
            "file".into(),
            "non contiene accertamenti: dopo l'intestazione servono le righe".into(),
        );
    }
    if problems.is_empty() {
        Ok(list)
    } else {
        Err(CsvRefused(problems))
    }
}

fn header_problem(message: String) -> FieldError {
    FieldError {
        field: "riga 1 (intestazione)".into(),
        code: codes::BAD_FORMAT,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_file_says_how_many_problems_it_has() {
        let e = parse_csv(b"codice;descrizione;capitolo\n", Some(2026)).unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert_eq!(
            e.to_string(),
            "il file ha un errore: non è stato caricato nulla"
        );
        let e = parse_csv(b"codice;nome\n", Some(2026)).unwrap_err();
        assert_eq!(e.0.len(), 3, "{e:?}");
        assert_eq!(
            e.to_string(),
            "il file ha 3 errori: non è stato caricato nulla"
        );
    }

    #[test]
    fn windows_1252_is_read_as_excel_writes_it() {
        let list = parse_csv(
            b"codice;descrizione;capitolo\nA1;Propriet\xe0;1\n",
            Some(2026),
        )
        .unwrap();
        assert_eq!(list[0].description, "Proprietà");
    }
}
