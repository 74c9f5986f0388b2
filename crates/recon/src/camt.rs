//! The treasury's movements as ISO 20022 cash management messages: the
//! statement (camt.053.001.02) and the credit notification
//! (camt.054.001.02). Each booked entry becomes a movement; an incoming
//! credit is the Ente's sospeso until it is regularized, a reversal
//! (`RvslInd`) undoes the entry with the same reference.
//!
//! camt does not carry the Ente: the caller says whose account this is,
//! and the account's IBAN is kept so that ingestion can check it.

use crate::TreasuryError;
use chrono::{Datelike, NaiveDate};
use incasso_core::Cents;
use incasso_core::treasury::{Direction, DocumentKind, Operation, TreasuryMovement};
use incasso_xml::{Element, Limits};

pub const NAMESPACE_053: &str = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02";
pub const NAMESPACE_054: &str = "urn:iso:std:iso:20022:tech:xsd:camt.054.001.02";

pub const LIMITS: Limits = Limits {
    max_bytes: 64 * 1024 * 1024,
    max_depth: 24,
    max_elements: 2_000_000,
};

/// Reads a camt.053 or camt.054 document for Ente `ente`. Entries not yet
/// booked (`Sts` other than BOOK) are left out: they may still change.
pub fn parse(bytes: &[u8], ente: &str) -> Result<Vec<TreasuryMovement>, TreasuryError> {
    let root =
        incasso_xml::parse(bytes, LIMITS).map_err(|e| TreasuryError::at("/", e.to_string()))?;
    let (body_name, report_name) = match root.namespace.as_deref() {
        Some(NAMESPACE_053) => ("BkToCstmrStmt", "Stmt"),
        Some(NAMESPACE_054) => ("BkToCstmrDbtCdtNtfctn", "Ntfctn"),
        _ => {
            return Err(TreasuryError::at(
                "/",
                "non è un camt.053.001.02 né un camt.054.001.02 (namespace diverso)",
            ));
        }
    };
    if root.name != "Document" {
        return Err(TreasuryError::at(
            "/",
            format!("radice {} invece di Document", root.name),
        ));
    }
    let body = root
        .child(body_name)
        .ok_or_else(|| TreasuryError::at(format!("Document/{body_name}"), "manca"))?;
    let mut out = Vec::new();
    for (r, report) in body.children_named(report_name).enumerate() {
        let rpath = format!("Document/{body_name}/{report_name}[{}]", r + 1);
        let report_id = report.text_of("Id").unwrap_or_default().to_string();
        // The account: its IBAN, or the bank's other id for it.
        let account_id = report.child("Acct").and_then(|a| a.child("Id"));
        let iban = account_id
            .and_then(|i| i.text_of("IBAN"))
            .or_else(|| {
                account_id
                    .and_then(|i| i.child("Othr"))
                    .and_then(|o| o.text_of("Id"))
            })
            .ok_or_else(|| TreasuryError::at(format!("{rpath}/Acct/Id"), "manca l'IBAN del conto"))?
            .to_string();
        for (n, entry) in report.children_named("Ntry").enumerate() {
            let path = format!("{rpath}/Ntry[{}]", n + 1);
            if let Some(m) = movement(entry, &path, ente, &iban, &report_id, n + 1)? {
                out.push(m);
            }
        }
    }
    Ok(out)
}

fn movement(
    entry: &Element,
    path: &str,
    ente: &str,
    iban: &str,
    report_id: &str,
    index: usize,
) -> Result<Option<TreasuryMovement>, TreasuryError> {
    let status = entry.text_of("Sts").unwrap_or_default();
    if status != "BOOK" {
        return Ok(None);
    }
    let amount_el = entry
        .child("Amt")
        .ok_or_else(|| TreasuryError::at(format!("{path}/Amt"), "manca"))?;
    if amount_el.attribute("Ccy") != Some("EUR") {
        return Err(TreasuryError::at(
            format!("{path}/Amt"),
            "valuta diversa da EUR: pagoPA incassa solo euro",
        ));
    }
    let amount_text = amount_el.text.trim();
    let amount = amount(amount_text).ok_or_else(|| {
        TreasuryError::at(
            format!("{path}/Amt"),
            format!("importo '{amount_text}' non valido"),
        )
    })?;
    let direction = match entry.text_of("CdtDbtInd") {
        Some("CRDT") => Direction::Income,
        Some("DBIT") => Direction::Outgoing,
        other => {
            return Err(TreasuryError::at(
                format!("{path}/CdtDbtInd"),
                format!("'{}' non ammesso (CRDT o DBIT)", other.unwrap_or("")),
            ));
        }
    };
    let reversed = entry.text_of("RvslInd") == Some("true");
    let booking_date = date_of(entry, "BookgDt")
        .ok_or_else(|| TreasuryError::at(format!("{path}/BookgDt"), "manca o non è una data"))?;
    let value_date = date_of(entry, "ValDt");
    let details = entry.child("NtryDtls").and_then(|d| d.child("TxDtls"));
    let refs = details.and_then(|d| d.child("Refs"));
    let end_to_end_id = refs
        .and_then(|r| r.text_of("EndToEndId"))
        .filter(|s| !s.is_empty() && *s != "NOTPROVIDED")
        .map(str::to_string);
    let tx_id = refs.and_then(|r| r.text_of("TxId")).map(str::to_string);
    // A batch-booked entry has several transactions: its causale is all of
    // their unstructured remittance blocks, in order.
    let causale = entry
        .child("NtryDtls")
        .map(|d| {
            d.children_named("TxDtls")
                .filter_map(|t| t.child("RmtInf"))
                .flat_map(|r| r.children_named("Ustrd"))
                .map(|u| u.text.trim())
                .filter(|u| !u.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let payer = details
        .and_then(|d| d.child("RltdPties"))
        .and_then(|p| p.child("Dbtr"))
        .and_then(|d| d.text_of("Nm"))
        .map(str::to_string);
    let reference = entry
        .text_of("AcctSvcrRef")
        .or_else(|| entry.text_of("NtryRef"))
        .map(str::to_string)
        .unwrap_or_else(|| format!("{report_id}/{index}"));
    let operation = if reversed {
        Operation::Reversed
    } else {
        Operation::Executed
    };
    Ok(Some(TreasuryMovement {
        movement_id: format!("{iban}/{reference}/{}", operation.as_str()),
        ente: ente.to_string(),
        account: iban.to_string(),
        year: booking_date.year(),
        direction,
        document: match direction {
            Direction::Income => DocumentKind::ProvisionalIncome,
            Direction::Outgoing => DocumentKind::Other("ADDEBITO".into()),
        },
        operation,
        document_number: reference,
        amount,
        booking_date,
        value_date,
        payer,
        causale,
        trn: tx_id,
        end_to_end_id,
    }))
}

/// `<X><Dt>` or `<X><DtTm>`, as a day.
fn date_of(el: &Element, name: &str) -> Option<NaiveDate> {
    let d = el.child(name)?;
    let text = d.text_of("Dt").or_else(|| d.text_of("DtTm"))?;
    NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()
}

/// camt amounts: up to five decimals in the schema, but euro have two.
fn amount(t: &str) -> Option<Cents> {
    let (units, decimals) = t.split_once('.').unwrap_or((t, ""));
    let decimals = decimals.trim_end_matches('0');
    (!units.is_empty()
        && units.bytes().all(|b| b.is_ascii_digit())
        && decimals.len() <= 2
        && decimals.bytes().all(|b| b.is_ascii_digit()))
    .then(|| Cents::parse_decimal(&format!("{units}.{decimals:0<2}")))
    .flatten()
}

/// What a bank statement says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementHeader {
    pub message_id: String,
    pub created_at: chrono::DateTime<chrono::FixedOffset>,
    pub statement_id: String,
    /// The Ente's account the movements are on.
    pub iban: String,
    /// The booked balance before the statement's entries.
    pub opening_balance: Cents,
}

/// Writes a camt.053.001.02 statement of `movements`: each an entry
/// booked on its day, with its causale as the unstructured remittance, its
/// TRN as the transaction id, and its document number as the bank's
/// reference (which [`parse`] reads back as the movement's id). A movement
/// whose account is another IBAN goes in a statement of that account;
/// every other one is on `h.iban`. Used by the simulator's treasury.
pub fn write_053(h: &StatementHeader, movements: &[TreasuryMovement]) -> String {
    let is_iban = |a: &str| a.len() >= 15 && a.as_bytes()[..2].iter().all(u8::is_ascii_alphabetic);
    let mut accounts: Vec<&str> = vec![&h.iban];
    for m in movements {
        if is_iban(&m.account) && !accounts.contains(&m.account.as_str()) {
            accounts.push(&m.account);
        }
    }
    let created = h
        .created_at
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
    let mut w = incasso_xml::Writer::new();
    w.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
        .raw(&format!("<Document xmlns=\"{NAMESPACE_053}\">"))
        .open("BkToCstmrStmt")
        .open("GrpHdr")
        .leaf("MsgId", &h.message_id)
        .leaf("CreDtTm", &created)
        .close("GrpHdr");
    for (n, account) in accounts.iter().enumerate() {
        let on_it: Vec<&TreasuryMovement> = movements
            .iter()
            .filter(|m| {
                if is_iban(&m.account) {
                    m.account == *account
                } else {
                    n == 0
                }
            })
            .collect();
        let opening = if n == 0 { h.opening_balance } else { Cents(0) };
        let id = if n == 0 {
            h.statement_id.clone()
        } else {
            format!("{}-{n}", h.statement_id)
        };
        write_statement(&mut w, h, &id, account, opening, &on_it);
    }
    w.close("BkToCstmrStmt").raw("</Document>");
    w.out
}

fn write_statement(
    w: &mut incasso_xml::Writer,
    h: &StatementHeader,
    statement_id: &str,
    iban: &str,
    opening_balance: Cents,
    movements: &[&TreasuryMovement],
) {
    let credit = |d: Direction| match d {
        Direction::Income => "CRDT",
        Direction::Outgoing => "DBIT",
    };
    let signed = |m: &&TreasuryMovement| {
        let sign = match (m.direction, m.operation == Operation::Reversed) {
            (Direction::Income, false) | (Direction::Outgoing, true) => 1,
            _ => -1,
        };
        sign * m.amount.0
    };
    let closing = Cents(opening_balance.0 + movements.iter().map(signed).sum::<i64>());
    let day = h.created_at.date_naive().to_string();
    let created = h
        .created_at
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
    w.open("Stmt")
        .leaf("Id", statement_id)
        .leaf("CreDtTm", &created)
        .open("Acct")
        .open("Id")
        .leaf("IBAN", iban)
        .close("Id")
        .leaf("Ccy", "EUR")
        .close("Acct");
    for (code, balance) in [("OPBD", opening_balance), ("CLBD", closing)] {
        w.open("Bal")
            .open("Tp")
            .open("CdOrPrtry")
            .leaf("Cd", code)
            .close("CdOrPrtry")
            .close("Tp")
            .raw(&format!(
                "<Amt Ccy=\"EUR\">{}</Amt>",
                Cents(balance.0.abs()).to_decimal()
            ))
            .leaf("CdtDbtInd", if balance.0 < 0 { "DBIT" } else { "CRDT" })
            .open("Dt")
            .leaf("Dt", &day)
            .close("Dt")
            .close("Bal");
    }
    for m in movements {
        w.open("Ntry")
            .raw(&format!(
                "<Amt Ccy=\"EUR\">{}</Amt>",
                m.amount.to_decimal()
            ))
            .leaf("CdtDbtInd", credit(m.direction))
            .leaf(
                "RvslInd",
                if m.operation == Operation::Reversed {
                    "true"
                } else {
                    "false"
                },
            )
            .leaf("Sts", "BOOK")
            .open("BookgDt")
            .leaf("Dt", &m.booking_date.to_string())
            .close("BookgDt")
            .open("ValDt")
            .leaf("Dt", &m.value_date.unwrap_or(m.booking_date).to_string())
            .close("ValDt")
            .leaf("AcctSvcrRef", &m.document_number)
            // SEPA credit transfer received (ISO bank transaction codes).
            .raw("<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>")
            .open("NtryDtls")
            .open("TxDtls")
            .open("Refs")
            .leaf(
                "EndToEndId",
                m.end_to_end_id.as_deref().unwrap_or("NOTPROVIDED"),
            )
            .leaf_opt("TxId", m.trn.as_deref())
            .close("Refs");
        if let Some(payer) = &m.payer {
            w.open("RltdPties")
                .open("Dbtr")
                .leaf("Nm", payer)
                .close("Dbtr")
                .close("RltdPties");
        }
        if !m.causale.trim().is_empty() {
            w.open("RmtInf").leaf("Ustrd", &m.causale).close("RmtInf");
        }
        w.close("TxDtls").close("NtryDtls").close("Ntry");
    }
    w.close("Stmt");
}
