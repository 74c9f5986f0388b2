//! Treasury movements from a bank's own export (CSV, fixed width, a
//! spreadsheet) through a `kind = "treasury"` layout: the same readers and
//! field rules as supplies, targets `movement.*` instead of a position's.
//!
//! A journal is taken whole or not at all, like the OPI and camt ones: any
//! row that breaks a rule refuses the file, and every such row is reported
//! with its line, field and reason.

use crate::layout::{Layout, LayoutKind};
use crate::normalize::{self, RowError};
use crate::read::{self, FileError};
use chrono::{Datelike, NaiveDate};
use incasso_core::Cents;
use incasso_core::treasury::{Direction, DocumentKind, Operation, TreasuryMovement};
use std::io::Read;

/// Why a bank's file was refused.
#[derive(Debug, thiserror::Error)]
pub enum MovementsError {
    #[error("il tracciato '{0}' non descrive movimenti di tesoreria")]
    NotTreasury(String),
    #[error(transparent)]
    File(#[from] FileError),
    /// Rows that break the layout's rules (at most the first hundred).
    #[error("{} righe non valide", .0.len())]
    Rows(Vec<RowError>),
}

/// Reads every movement of `reader` as `layout` says, for Ente `ente`.
pub fn movements<R: Read + Send + 'static>(
    layout: &Layout,
    ente: &str,
    reader: R,
) -> Result<Vec<TreasuryMovement>, MovementsError> {
    if layout.kind != LayoutKind::Treasury {
        return Err(MovementsError::NotTreasury(layout.name.clone()));
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for record in read::records(layout, reader)? {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(RowError {
                    line: e.line,
                    field: String::new(),
                    value: String::new(),
                    code: e.code,
                    message: e.message,
                });
                continue;
            }
        };
        match normalize::row(layout, &record).and_then(|row| movement(ente, &row)) {
            Ok(m) => out.push(m),
            Err(e) => errors.extend(e),
        }
        if errors.len() >= 100 {
            break;
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(MovementsError::Rows(errors))
    }
}

/// One movement from a row's `movement.*` values.
pub fn movement(ente: &str, row: &normalize::Row) -> Result<TreasuryMovement, Vec<RowError>> {
    let mut errors = Vec::new();
    let get = |t: &str| row.values.get(t).map(String::as_str).unwrap_or("").trim();
    let mut bad = |field: &str, value: &str, code: &'static str, message: &str| {
        errors.push(RowError {
            line: row.line,
            field: field.to_string(),
            value: value.to_string(),
            code,
            message: message.to_string(),
        });
    };
    let number = get("movement.number");
    if number.is_empty() {
        bad(
            "movement.number",
            "",
            "MISSING_VALUE",
            "manca il numero del movimento",
        );
    }
    // Dates and amounts come normalized by their rules: ISO days, cents.
    let day = |t: &str| NaiveDate::parse_from_str(get(t), "%Y-%m-%d").ok();
    let booking_date = day("movement.date");
    if booking_date.is_none() {
        bad(
            "movement.date",
            get("movement.date"),
            "BAD_DATE",
            "manca la data del movimento o non è una data",
        );
    }
    let value_date = day("movement.value_date");
    let signed = get("movement.amount").parse::<i64>().ok();
    let signed = match signed.map(|c| Cents(c).within_limit()) {
        Some(Some(c)) => Some(c.0),
        Some(None) => {
            bad(
                "movement.amount",
                get("movement.amount"),
                "AMOUNT_OUT_OF_RANGE",
                "importo fuori intervallo (al massimo 999.999.999,99 €)",
            );
            None
        }
        None => {
            bad(
                "movement.amount",
                get("movement.amount"),
                "BAD_AMOUNT",
                "manca l'importo o non è un importo (serve la regola amount)",
            );
            None
        }
    };
    let direction = match get("movement.direction").to_uppercase().as_str() {
        "" => match signed {
            Some(c) if c < 0 => Direction::Outgoing,
            _ => Direction::Income,
        },
        "E" | "ENTRATA" | "C" | "CRDT" | "CREDIT" | "A" | "AVERE" | "+" => Direction::Income,
        "U" | "USCITA" | "D" | "DBIT" | "DEBIT" | "DARE" | "-" => Direction::Outgoing,
        other => {
            bad(
                "movement.direction",
                other,
                "BAD_VALUE",
                "segno non riconosciuto (ENTRATA/E/C/+ oppure USCITA/U/D/-)",
            );
            Direction::Income
        }
    };
    let operation = match get("movement.operation").to_uppercase().as_str() {
        "" | "ESEGUITO" | "E" | "BOOK" => Operation::Executed,
        "STORNATO" | "S" | "STORNO" | "REVERSAL" => Operation::Reversed,
        other => {
            bad(
                "movement.operation",
                other,
                "BAD_VALUE",
                "operazione non riconosciuta (ESEGUITO o STORNATO)",
            );
            Operation::Executed
        }
    };
    let year = match get("movement.year") {
        "" => booking_date.map(|d| d.year()),
        y => match y.parse::<i32>() {
            Ok(y) if (2000..=2100).contains(&y) => Some(y),
            _ => {
                bad("movement.year", y, "BAD_VALUE", "esercizio non valido");
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let (Some(booking_date), Some(signed), Some(year)) = (booking_date, signed, year) else {
        unreachable!("every missing value was reported");
    };
    let account = match get("movement.account") {
        "" => "TESORERIA".to_string(),
        a => a.to_string(),
    };
    let document = match get("movement.document") {
        "" => match direction {
            Direction::Income => DocumentKind::ProvisionalIncome,
            Direction::Outgoing => DocumentKind::Other("USCITA".into()),
        },
        d => DocumentKind::from_opi(&d.to_uppercase()),
    };
    let opt = |t: &str| Some(get(t)).filter(|v| !v.is_empty()).map(str::to_string);
    Ok(TreasuryMovement {
        movement_id: format!("{year}/{account}/{number}/{}", operation.as_str()),
        ente: ente.to_string(),
        account,
        year,
        direction,
        document,
        operation,
        document_number: number.to_string(),
        amount: Cents(signed.abs()),
        booking_date,
        value_date,
        payer: opt("movement.payer"),
        causale: get("movement.causale").to_string(),
        trn: opt("movement.trn"),
        end_to_end_id: opt("movement.end_to_end_id"),
    })
}
