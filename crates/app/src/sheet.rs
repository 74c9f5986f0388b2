//! A list as a person reads it: titled columns and typed cells, which the
//! back office shows as a page and exports as CSV or XLSX. One value feeds
//! all three, so an export never disagrees with the page it came from.
//!
//! CSV is written as Italian spreadsheets open it: `;` between fields,
//! decimal comma, dates as `dd/mm/yyyy`, and a UTF-8 byte-order mark (else
//! Excel reads accented letters as Latin-1). XLSX keeps amounts as numbers
//! and dates as dates, so a clerk can sum and sort them.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use incasso_core::money::Cents;

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i64),
    Money(Cents),
    Date(NaiveDate),
    /// Shown in Europe/Rome time.
    DateTime(DateTime<Utc>),
    Empty,
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }

    pub fn opt_text(s: Option<impl Into<String>>) -> Cell {
        s.map(|s| Cell::Text(s.into())).unwrap_or(Cell::Empty)
    }

    /// As a page and a CSV show it: amounts `1.234,56`, dates
    /// `dd/mm/yyyy`, instants `dd/mm/yyyy hh:mm` in Rome's time.
    pub fn display(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Money(c) => c.to_italian(),
            Cell::Date(d) => d.format("%d/%m/%Y").to_string(),
            Cell::DateTime(t) => incasso_core::time::to_rome(*t)
                .format("%d/%m/%Y %H:%M")
                .to_string(),
            Cell::Empty => String::new(),
        }
    }

    /// Right-aligned in a table: numbers and amounts.
    pub fn numeric(&self) -> bool {
        matches!(self, Cell::Int(_) | Cell::Money(_))
    }
}

/// A titled table.
#[derive(Debug, Clone, Default)]
pub struct Sheet {
    /// Also the XLSX worksheet's name (cut to Excel's 31 characters).
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// The most rows a list exports: past this a clerk narrows the search, and
/// the door says so instead of building a file no spreadsheet opens.
pub const MAX_EXPORT_ROWS: u32 = 100_000;

impl Sheet {
    pub fn new(title: impl Into<String>, columns: &[&str]) -> Sheet {
        Sheet {
            title: title.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<Cell>) {
        debug_assert_eq!(row.len(), self.columns.len(), "row of {}", self.title);
        self.rows.push(row);
    }

    /// `;`-separated, Italian formats, with a byte-order mark.
    pub fn to_csv(&self) -> Vec<u8> {
        let mut out = Vec::from("\u{feff}".as_bytes());
        {
            let mut w = csv::WriterBuilder::new()
                .delimiter(b';')
                .from_writer(&mut out);
            let _ = w.write_record(&self.columns);
            for row in &self.rows {
                let _ = w.write_record(row.iter().map(Cell::display));
            }
            let _ = w.flush();
        }
        out
    }

    /// An XLSX workbook of one worksheet: a bold header, amounts as
    /// numbers in euro, dates as dates.
    pub fn to_xlsx(&self) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
        use rust_xlsxwriter::{Format, Workbook};
        let mut book = Workbook::new();
        let ws = book.add_worksheet();
        let name: String = self
            .title
            .chars()
            .filter(|c| !matches!(c, '[' | ']' | ':' | '*' | '?' | '/' | '\\'))
            .take(31)
            .collect();
        if !name.trim().is_empty() {
            ws.set_name(name.trim())?;
        }
        let bold = Format::new().set_bold();
        let euro = Format::new().set_num_format("#,##0.00 \"€\"");
        let date = Format::new().set_num_format("dd/mm/yyyy");
        let instant = Format::new().set_num_format("dd/mm/yyyy hh:mm");
        for (c, title) in self.columns.iter().enumerate() {
            ws.write_string_with_format(0, c as u16, title, &bold)?;
        }
        for (r, row) in self.rows.iter().enumerate() {
            let r = r as u32 + 1;
            for (c, cell) in row.iter().enumerate() {
                let c = c as u16;
                match cell {
                    Cell::Text(s) => {
                        ws.write_string(r, c, s)?;
                    }
                    Cell::Int(n) => {
                        ws.write_number(r, c, *n as f64)?;
                    }
                    // Cents to a spreadsheet's number: the one place money
                    // becomes a float, for a program that only has those.
                    Cell::Money(m) => {
                        ws.write_number_with_format(r, c, m.0 as f64 / 100.0, &euro)?;
                    }
                    Cell::Date(d) => {
                        ws.write_datetime_with_format(r, c, excel_date(*d)?, &date)?;
                    }
                    Cell::DateTime(t) => {
                        let rome = incasso_core::time::to_rome(*t);
                        let at = excel_date(rome.date())?.and_hms(
                            rome.hour() as u16,
                            rome.minute() as u8,
                            rome.second(),
                        )?;
                        ws.write_datetime_with_format(r, c, &at, &instant)?;
                    }
                    Cell::Empty => {}
                }
            }
        }
        ws.autofit();
        book.save_to_buffer()
    }
}

fn excel_date(d: NaiveDate) -> Result<rust_xlsxwriter::ExcelDateTime, rust_xlsxwriter::XlsxError> {
    rust_xlsxwriter::ExcelDateTime::from_ymd(d.year() as u16, d.month() as u8, d.day() as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Sheet {
        let mut s = Sheet::new("Posizioni", &["IUV", "Importo", "Scadenza"]);
        s.push(vec![
            Cell::text("01234567890123456"),
            Cell::Money(Cents(123456)),
            Cell::Date(NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()),
        ]);
        s.push(vec![
            Cell::text("a;b \"c\""),
            Cell::Money(Cents(-5)),
            Cell::Empty,
        ]);
        s
    }

    #[test]
    fn csv_is_italian_and_quoted() {
        let csv = String::from_utf8(sample().to_csv()).unwrap();
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some("\u{feff}IUV;Importo;Scadenza"));
        assert_eq!(lines.next(), Some("01234567890123456;1.234,56;31/12/2026"));
        assert_eq!(lines.next(), Some("\"a;b \"\"c\"\"\";-0,05;"));
    }

    #[test]
    fn xlsx_is_a_zip_with_the_rows() {
        let bytes = sample().to_xlsx().unwrap();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut shared = String::new();
        std::io::Read::read_to_string(
            &mut zip.by_name("xl/sharedStrings.xml").unwrap(),
            &mut shared,
        )
        .unwrap();
        assert!(shared.contains("01234567890123456"), "{shared}");
        let mut sheet = String::new();
        std::io::Read::read_to_string(
            &mut zip.by_name("xl/worksheets/sheet1.xml").unwrap(),
            &mut sheet,
        )
        .unwrap();
        assert!(sheet.contains("<v>1234.56</v>"), "{sheet}");
    }
}
