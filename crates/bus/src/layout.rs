//! A layout (*tracciato*) is data: a TOML document that says how to read a
//! management application's file and where each value goes. It never runs
//! code or templates (GovPay's FreeMarker templates, which can call Java, are
//! the mistake this avoids): every rule is one of a closed set.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    pub name: String,
    pub version: u32,
    #[serde(default)]
    pub description: String,
    /// What the file's rows are: debt positions (the default), or the
    /// treasury's movements (`movement.*` targets; see [`crate::treasury`]).
    #[serde(default)]
    pub kind: LayoutKind,
    /// Absent only in an export-only layout (see [`Layout::loads`]).
    #[serde(default = "export_only_format")]
    pub format: Format,
    #[serde(default)]
    pub encoding: Encoding,
    /// `true`: one bad row refuses the whole supply. `false`: the valid rows
    /// load and the others are reported.
    #[serde(default = "yes")]
    pub all_or_nothing: bool,
    /// A partial load commits, with its checkpoint, every this many rows.
    /// Fewer commits load faster: on SQLite each writes out every page the
    /// rows touched, and the debtors' index spreads them (at 10,000 a
    /// million-row file took 31 s, at 50,000 25 s). More commits hold
    /// other writers up for less (each waits at most one interval for
    /// SQLite's write lock) and lose less work to a kill -9.
    #[serde(default = "default_checkpoint_rows")]
    pub checkpoint_rows: u32,
    /// Source fields whose values, joined, are the application's key of a
    /// position (incasso's `iupd`). Rows with the same key are one position
    /// (its installments) and must be adjacent in the file.
    #[serde(default)]
    pub key: Vec<String>,
    #[serde(default)]
    pub operation: Option<OperationRule>,
    /// Target field -> how to compute it (see [`crate::normalize`]).
    #[serde(default)]
    pub fields: BTreeMap<String, FieldRule>,
    /// Where the outcome file writes each row's notice number (and IUV).
    #[serde(default)]
    pub outcome: Outcome,
    /// The reporting-back export in the application's own layout.
    #[serde(default)]
    pub export: Option<ExportLayout>,
}

fn yes() -> bool {
    true
}

/// About a second of writing on a small machine.
pub const DEFAULT_CHECKPOINT_ROWS: u32 = 50_000;

/// The longest line a fixed-width layout may describe, in characters: far
/// beyond any record management applications write.
pub const MAX_FIXED_WIDTH: usize = 10_000;

fn default_checkpoint_rows() -> u32 {
    DEFAULT_CHECKPOINT_ROWS
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayoutKind {
    #[default]
    Positions,
    /// A bank's export of the treasury account: one movement per row.
    Treasury,
}

/// The targets of a treasury layout.
pub const MOVEMENT_TARGETS: &[&str] = &[
    "movement.number",
    "movement.date",
    "movement.value_date",
    "movement.amount",
    "movement.direction",
    "movement.operation",
    "movement.document",
    "movement.causale",
    "movement.payer",
    "movement.trn",
    "movement.end_to_end_id",
    "movement.account",
    "movement.year",
];

/// An export-only layout reads no file; its format is never used.
fn export_only_format() -> Format {
    Format::Delimited {
        separator: ';',
        quote: '"',
        header: true,
        columns: Vec::new(),
        zipped: false,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Format {
    Delimited {
        separator: char,
        #[serde(default = "default_quote")]
        quote: char,
        header: bool,
        /// Column names when the file has no header.
        #[serde(default)]
        columns: Vec<String>,
        /// The file is a ZIP holding one such file (MyPay's supplies).
        #[serde(default)]
        zipped: bool,
    },
    /// XLSX or ODS (told apart by content): a sheet whose `header_row`
    /// (1-based) names the columns.
    Spreadsheet {
        #[serde(default)]
        sheet: Option<String>,
        #[serde(default = "one")]
        header_row: usize,
    },
    Fixed {
        columns: Vec<FixedColumn>,
        /// Lines to skip at the start (a title, a header).
        #[serde(default)]
        skip_lines: usize,
    },
    Json {
        /// Dotted path to the array of records; empty for a top-level array.
        #[serde(default)]
        records: String,
        /// Dotted path, within a record, of an array to turn into one row
        /// per element (GPD's `paymentOption`). Element fields are read as
        /// `@.name`.
        #[serde(default)]
        explode: Option<String>,
    },
}

fn default_quote() -> char {
    '"'
}

fn one() -> usize {
    1
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedColumn {
    pub name: String,
    /// 1-based, inclusive, in characters.
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Encoding {
    #[default]
    #[serde(rename = "utf-8")]
    Utf8,
    #[serde(rename = "windows-1252")]
    Windows1252,
    #[serde(rename = "iso-8859-1")]
    Iso8859_1,
    #[serde(rename = "iso-8859-15")]
    Iso8859_15,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationRule {
    pub column: String,
    #[serde(default)]
    pub insert: Vec<String>,
    #[serde(default)]
    pub update: Vec<String>,
    #[serde(default)]
    pub cancel: Vec<String>,
    /// What any other value means (`insert`, `update` or `cancel`); absent,
    /// another value is an error on its row.
    #[serde(default)]
    pub otherwise: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    /// Take the value of this source field.
    #[serde(default)]
    pub column: Option<String>,
    /// Or join these source fields...
    #[serde(default)]
    pub join: Vec<String>,
    /// ...with this separator (default a space).
    #[serde(default)]
    pub separator: Option<String>,
    /// Or take part `index` (0-based) of `column` split by `split`.
    #[serde(default)]
    pub split: Option<String>,
    #[serde(default)]
    pub index: usize,
    /// Or choose by the value of another field: value -> source field.
    #[serde(default)]
    pub choose_by: Option<String>,
    #[serde(default)]
    pub cases: BTreeMap<String, String>,
    /// A fixed value, whatever the file says.
    #[serde(default)]
    pub constant: Option<String>,
    /// The value when the source is empty.
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default = "yes")]
    pub trim: bool,
    #[serde(default)]
    pub case: Option<Case>,
    /// Left-pad to this length with `pad_char` (default '0').
    #[serde(default)]
    pub pad: Option<usize>,
    #[serde(default)]
    pub pad_char: Option<char>,
    #[serde(default)]
    pub date: Option<DateFormat>,
    #[serde(default)]
    pub amount: Option<AmountFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Case {
    Upper,
    Lower,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DateFormat {
    #[serde(rename = "dd/mm/yyyy")]
    DayMonthYear,
    #[serde(rename = "yyyymmdd")]
    Compact,
    /// `yyyy-mm-dd`, or a full ISO 8601 date-time.
    #[serde(rename = "iso")]
    Iso,
}

impl DateFormat {
    /// The format as a clerk reads it in an error message.
    pub fn spelled(self) -> &'static str {
        match self {
            DateFormat::DayMonthYear => "gg/mm/aaaa",
            DateFormat::Compact => "aaaammgg",
            DateFormat::Iso => "aaaa-mm-gg",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmountFormat {
    /// Integer cents: `123456`.
    Cents,
    /// Italian: `1.234,56` (thousands dots optional).
    Italian,
    /// Dot decimal: `1234.56`.
    Dot,
}

impl AmountFormat {
    /// The format as a clerk reads it in an error message.
    pub fn spelled(self) -> &'static str {
        match self {
            AmountFormat::Cents => "centesimi senza separatori, come 123456",
            AmountFormat::Italian => "all'italiana, come 1.234,56",
            AmountFormat::Dot => "con il punto decimale, come 1234.56",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// Source column (or JSON field) to fill with the notice number.
    #[serde(default)]
    pub notice_number: Option<String>,
    #[serde(default)]
    pub iuv: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportLayout {
    /// What the export lists: the receipts of the positions the layout
    /// loaded (the default), or the regularization proposals of matched
    /// sospesi, one row per accertamento part.
    #[serde(default)]
    pub source: ExportSource,
    /// `;`, `,`, `|`... for delimited exports; absent for fixed width.
    #[serde(default)]
    pub separator: Option<char>,
    #[serde(default = "yes")]
    pub header: bool,
    pub columns: Vec<ExportColumn>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportSource {
    #[default]
    Receipts,
    Regularizations,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportColumn {
    pub name: String,
    /// Receipts: `key`, `notice_number`, `iuv`, `amount`, `paid_at`,
    /// `receipt_id`, `psp_id`, `psp_name`, `payment_method`, `fee`,
    /// `outcome`. Regularizations: `sospeso_number`, `sospeso_date`,
    /// `sospeso_amount`, `account`, `movement_id`, `flow_id`,
    /// `accertamento_year`, `accertamento_code`, `chapter`, `article`,
    /// `siope_code`, `amount` (the part's), `causale`.
    pub value: String,
    #[serde(default)]
    pub amount: Option<AmountFormat>,
    #[serde(default)]
    pub date: Option<DateFormat>,
    /// Fixed-width exports: the column's width.
    #[serde(default)]
    pub width: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("tracciato non valido: {0}")]
    Parse(String),
    #[error("tracciato non valido: {0}")]
    Rule(String),
}

/// The target fields a layout may fill (`transfer.N.*` and `quota.N.*` with
/// N from 1 to 5, `metadata.NAME` with any name).
pub const TARGETS: &[&str] = &[
    "debtor.type",
    "debtor.fiscal_code",
    "debtor.full_name",
    "debtor.street",
    "debtor.civic",
    "debtor.postal_code",
    "debtor.city",
    "debtor.province",
    "debtor.country",
    "debtor.email",
    "debtor.phone",
    "company_name",
    "office_name",
    "service",
    "option.iuv",
    "option.notice_number",
    "option.amount",
    "option.description",
    "option.due_date",
    "option.retention_date",
    "option.installment",
    // Tells apart single solutions that are alternatives of one position
    // (a fine's reduced and full amounts): any label, one per option.
    "option.alternative",
    // MyPay's `bilancio` XML: the accertamenti quotas of transfer 1.
    "quota.bilancio",
    // The position's App IO invitation: yes (S, SI, Y, YES, 1, TRUE, X)
    // asks for it, no (N, NO, 0, FALSE) refuses it; empty: as the service
    // says (docs/NOTIFICATIONS.md).
    "notify.invite",
];

const TRANSFER_FIELDS: &[&str] = &[
    "amount",
    "remittance",
    "iban",
    "postal_iban",
    "category",
    "fiscal_code",
    "stamp_type",
    "stamp_hash",
    "stamp_province",
];
const QUOTA_FIELDS: &[&str] = &["accertamento", "amount"];

fn target_known(t: &str) -> bool {
    if TARGETS.contains(&t) || t.strip_prefix("metadata.").is_some_and(|n| !n.is_empty()) {
        return true;
    }
    let indexed = |prefix: &str, fields: &[&str]| {
        t.strip_prefix(prefix)
            .and_then(|rest| rest.split_once('.'))
            .is_some_and(|(n, f)| {
                n.parse::<u8>().is_ok_and(|n| (1..=5).contains(&n)) && fields.contains(&f)
            })
    };
    indexed("transfer.", TRANSFER_FIELDS) || indexed("quota.", QUOTA_FIELDS)
}

impl Layout {
    pub fn from_toml(text: &str) -> Result<Layout, LayoutError> {
        let layout: Layout = toml::from_str(text).map_err(|e| LayoutError::Parse(e.to_string()))?;
        layout.check()?;
        Ok(layout)
    }

    /// Whether the layout loads supplies of positions; an export-only or a
    /// treasury one does not.
    pub fn loads(&self) -> bool {
        self.kind == LayoutKind::Positions && !self.fields.is_empty()
    }

    /// Checks the layout itself, before any file meets it.
    pub fn check(&self) -> Result<(), LayoutError> {
        if !incasso_core::text::is_safe_identifier(&self.name, 64) {
            return Err(LayoutError::Rule(format!(
                "nome '{}' non ammesso",
                self.name
            )));
        }
        self.check_widths()?;
        // An accounting application that loads nothing and takes
        // regularizations back has a layout with an export alone.
        if self.key.is_empty() && self.fields.is_empty() {
            return match &self.export {
                Some(_) => Ok(()),
                None => Err(LayoutError::Rule(
                    "il tracciato non carica (key, fields) e non esporta (export)".into(),
                )),
            };
        }
        if self.key.is_empty() {
            return Err(LayoutError::Rule(
                "serve almeno un campo chiave (key)".into(),
            ));
        }
        if !(100..=1_000_000).contains(&self.checkpoint_rows) {
            return Err(LayoutError::Rule(format!(
                "checkpoint_rows {} fuori dall'intervallo 100 - 1000000",
                self.checkpoint_rows
            )));
        }
        let treasury = self.kind == LayoutKind::Treasury;
        for (target, rule) in &self.fields {
            let known = if treasury {
                MOVEMENT_TARGETS.contains(&target.as_str())
            } else {
                target_known(target)
            };
            if !known {
                return Err(LayoutError::Rule(format!(
                    "campo di destinazione sconosciuto '{target}'"
                )));
            }
            let sources = usize::from(rule.column.is_some())
                + usize::from(!rule.join.is_empty())
                + usize::from(rule.choose_by.is_some())
                + usize::from(rule.constant.is_some());
            if sources == 0 && rule.default.is_none() {
                return Err(LayoutError::Rule(format!(
                    "'{target}': manca la sorgente (column, join, choose_by, constant o default)"
                )));
            }
            if sources > 1 {
                return Err(LayoutError::Rule(format!(
                    "'{target}': una sola sorgente tra column, join, choose_by e constant"
                )));
            }
            if rule.split.is_some() && rule.column.is_none() {
                return Err(LayoutError::Rule(format!(
                    "'{target}': split richiede column"
                )));
            }
        }
        let required: &[&str] = if treasury {
            &["movement.number", "movement.date", "movement.amount"]
        } else {
            &["option.amount", "debtor.fiscal_code"]
        };
        for required in required {
            if !self.fields.contains_key(*required) {
                return Err(LayoutError::Rule(format!(
                    "manca il campo obbligatorio '{required}'"
                )));
            }
        }
        Ok(())
    }

    /// Column positions and widths: a line is padded to the last column
    /// read or written, so an absurd one would be an allocation that
    /// aborts the process, whatever the file.
    fn check_widths(&self) -> Result<(), LayoutError> {
        if let Format::Fixed { columns, .. } = &self.format {
            for c in columns {
                if c.start == 0 || c.end < c.start {
                    return Err(LayoutError::Rule(format!(
                        "colonna '{}': intervallo {}-{} non valido",
                        c.name, c.start, c.end
                    )));
                }
                if c.end > MAX_FIXED_WIDTH {
                    return Err(LayoutError::Rule(format!(
                        "colonna '{}': termina al carattere {}, oltre il massimo di {MAX_FIXED_WIDTH}",
                        c.name, c.end
                    )));
                }
            }
        }
        let export_columns = self.export.iter().flat_map(|e| &e.columns);
        for c in export_columns {
            if let Some(width) = c.width.filter(|w| *w > MAX_FIXED_WIDTH) {
                return Err(LayoutError::Rule(format!(
                    "colonna esportata '{}': larghezza {width} oltre il massimo di {MAX_FIXED_WIDTH}",
                    c.name
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert!(target_known("transfer.5.iban"));
        assert!(!target_known("transfer.6.iban"));
        assert!(!target_known("transfer.1.colour"));
        assert!(target_known("quota.2.accertamento"));
        assert!(target_known("metadata.anno"));
        assert!(!target_known("debtor.shoe_size"));
    }

    /// Found by fuzzing (fuzz/corpus/bus_custom_layout/fixed_column_past_any_line):
    /// every line is padded to the last column, and one ending at 2^64 - 1
    /// made the reader panic on its first line.
    #[test]
    fn columns_beyond_any_line_are_refused() {
        let fixed = |end: &str| {
            format!(
                r#"
name = "x"
version = 1
key = ["id"]
[format]
kind = "fixed"
columns = [{{ name = "id", start = 1, end = 5 }}, {{ name = "importo", start = 6, end = {end} }}]
[fields]
"debtor.fiscal_code" = {{ column = "id" }}
"option.amount" = {{ column = "importo", amount = "cents" }}
"#
            )
        };
        assert!(Layout::from_toml(&fixed("10000")).is_ok());
        let e = Layout::from_toml(&fixed("18446744073709551615")).unwrap_err();
        assert!(e.to_string().contains("oltre il massimo di 10000"), "{e}");
        let export = |width: &str| {
            format!(
                r#"
name = "x"
version = 1
[export]
columns = [{{ name = "avviso", value = "notice_number", width = {width} }}]
"#
            )
        };
        assert!(Layout::from_toml(&export("18")).is_ok());
        let e = Layout::from_toml(&export("100000")).unwrap_err();
        assert!(e.to_string().contains("larghezza 100000"), "{e}");
    }

    #[test]
    fn layouts_that_could_run_code_or_are_incomplete_are_refused() {
        let bad = r#"
name = "x"
version = 1
key = ["id"]
format = { kind = "delimited", separator = ";", header = true }
[fields]
"option.amount" = { template = "${java.lang.Runtime}" }
"#;
        assert!(
            Layout::from_toml(bad).is_err(),
            "unknown rule keys are refused"
        );
        let no_amount = r#"
name = "x"
version = 1
key = ["id"]
format = { kind = "delimited", separator = ";", header = true }
[fields]
"debtor.fiscal_code" = { column = "cf" }
"#;
        assert!(
            Layout::from_toml(no_amount)
                .unwrap_err()
                .to_string()
                .contains("option.amount")
        );
    }

    #[test]
    fn the_checkpoint_interval_defaults_and_is_bounded() {
        let with = |line: &str| {
            format!(
                r#"
name = "x"
version = 1
all_or_nothing = false
{line}
key = ["id"]
format = {{ kind = "delimited", separator = ";", header = true }}
[fields]
"debtor.fiscal_code" = {{ column = "cf" }}
"option.amount" = {{ column = "importo", amount = "cents" }}
"#
            )
        };
        let default = Layout::from_toml(&with("")).unwrap();
        assert_eq!(default.checkpoint_rows, DEFAULT_CHECKPOINT_ROWS);
        let set = Layout::from_toml(&with("checkpoint_rows = 2000")).unwrap();
        assert_eq!(set.checkpoint_rows, 2000);
        for bad in ["0", "99", "1000001"] {
            let err = Layout::from_toml(&with(&format!("checkpoint_rows = {bad}")))
                .unwrap_err()
                .to_string();
            assert!(err.contains("checkpoint_rows"), "{bad}: {err}");
        }
    }
}
