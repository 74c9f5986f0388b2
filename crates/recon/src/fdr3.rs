//! Reporting flows from FdR 3, the Node's REST interface for Enti
//! (`fdr_organization.json`): the list of published flows, a flow's header
//! and its pages of payments. They become the same [`ReportingFlow`] the
//! SOAP `FlussoRiversamento` gives, checked with the same care: a field
//! missing or out of its pattern refuses the flow whole, with its JSON path.
//! (The connector pages through the list and the payments; this reads what
//! it fetched.)
//!
//! Amounts travel as JSON numbers (`12.34`). They are read from the
//! number's text, never through floating-point arithmetic.

use crate::fdr::FdrError;
use chrono::{DateTime, NaiveDate, Utc};
use incasso_core::Cents;
use incasso_core::fdr::{FlowOutcome, FlowPayment, PartyIdKind, ReportingFlow};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HeaderJson {
    fdr: String,
    revision: Option<u64>,
    fdr_date: String,
    regulation: String,
    regulation_date: String,
    bic_code_pouring_bank: Option<String>,
    sender: SenderJson,
    receiver: ReceiverJson,
    tot_payments: u64,
    sum_payments: serde_json::Number,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SenderJson {
    #[serde(rename = "type")]
    kind: String,
    id: String,
    psp_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReceiverJson {
    organization_id: String,
    organization_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PaymentsJson {
    #[serde(default)]
    data: Vec<PaymentJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PaymentJson {
    index: u64,
    iuv: String,
    iur: String,
    id_transfer: u8,
    pay: serde_json::Number,
    pay_status: String,
    pay_date: String,
}

fn json_error(what: &str, e: serde_json::Error) -> FdrError {
    FdrError {
        location: format!("{what} (riga {}, colonna {})", e.line(), e.column()),
        message: format!("JSON non valido: {e}"),
    }
}

fn at(location: impl Into<String>, message: impl Into<String>) -> FdrError {
    FdrError {
        location: location.into(),
        message: message.into(),
    }
}

/// Reads a flow from its header (`.../psps/{pspId}`) and every page of its
/// payments (`.../payments`), in order.
pub fn parse(header: &[u8], payment_pages: &[Vec<u8>]) -> Result<ReportingFlow, FdrError> {
    let h: HeaderJson = serde_json::from_slice(header).map_err(|e| json_error("flusso", e))?;
    check_id("fdr", &h.fdr, 35)?;
    let psp_id_kind = match h.sender.kind.as_str() {
        "LEGAL_PERSON" => PartyIdKind::LegalPerson,
        "ABI_CODE" => PartyIdKind::Abi,
        "BIC_CODE" => PartyIdKind::Bic,
        other => {
            return Err(at(
                "sender.type",
                format!("'{other}' non ammesso (LEGAL_PERSON, ABI_CODE, BIC_CODE)"),
            ));
        }
    };
    let mut payments = Vec::new();
    for (p, page) in payment_pages.iter().enumerate() {
        let page: PaymentsJson = serde_json::from_slice(page)
            .map_err(|e| json_error(&format!("pagamenti, pagina {}", p + 1), e))?;
        for (i, pay) in page.data.into_iter().enumerate() {
            let path = format!("pagamenti, pagina {}, data[{i}]", p + 1);
            payments.push((pay.index, payment(&path, pay)?));
        }
    }
    // The lines in the flow's own order, whatever order the pages came in.
    payments.sort_by_key(|(index, _)| *index);
    if let Some(w) = payments.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(at(
            "pagamenti",
            format!("l'indice {} compare due volte", w[0].0),
        ));
    }
    Ok(ReportingFlow {
        flow_date_time: instant("fdrDate", &h.fdr_date)?,
        settlement_ref: {
            check_id("regulation", &h.regulation, 35)?;
            h.regulation
        },
        settlement_date: day("regulationDate", &h.regulation_date)?,
        psp_id: h.sender.id,
        psp_id_kind,
        psp_name: h.sender.psp_name,
        bic: h.bic_code_pouring_bank.filter(|b| !b.is_empty()),
        ente: h.receiver.organization_id,
        ente_name: h.receiver.organization_name,
        declared_count: h.tot_payments,
        declared_total: amount("sumPayments", &h.sum_payments)?,
        payments: payments.into_iter().map(|(_, p)| p).collect(),
        flow_id: h.fdr,
        revision: h.revision,
    })
}

fn payment(path: &str, p: PaymentJson) -> Result<FlowPayment, FdrError> {
    check_id(&format!("{path}.iuv"), &p.iuv, 35)?;
    check_id(&format!("{path}.iur"), &p.iur, 35)?;
    if !(1..=5).contains(&p.id_transfer) {
        return Err(at(
            format!("{path}.idTransfer"),
            format!("{} fuori da 1..5", p.id_transfer),
        ));
    }
    let outcome = match p.pay_status.as_str() {
        "EXECUTED" => FlowOutcome::Paid,
        "REVOKED" => FlowOutcome::Revoked,
        "STAND_IN" => FlowOutcome::StandIn,
        "STAND_IN_NO_RPT" => FlowOutcome::StandInWithoutReceipt,
        "NO_RPT" => FlowOutcome::PaidWithoutReceipt,
        other => {
            return Err(at(
                format!("{path}.payStatus"),
                format!("'{other}' non ammesso"),
            ));
        }
    };
    Ok(FlowPayment {
        amount: amount(&format!("{path}.pay"), &p.pay)?,
        outcome_date: day(&format!("{path}.payDate"), &p.pay_date)?,
        iuv: p.iuv,
        iur: p.iur,
        transfer_index: Some(p.id_transfer),
        outcome,
    })
}

/// The spec's `^(.{1,35})$`, with nothing but what a flow id may hold.
fn check_id(path: &str, value: &str, max: usize) -> Result<(), FdrError> {
    if value.is_empty() || value.chars().count() > max {
        return Err(at(
            path,
            format!("'{value}' deve avere da 1 a {max} caratteri"),
        ));
    }
    Ok(())
}

/// An amount of euro with at most two decimals, read from the number's
/// text.
fn amount(path: &str, n: &serde_json::Number) -> Result<Cents, FdrError> {
    let text = n.to_string();
    let (units, decimals) = text.split_once('.').unwrap_or((&text, ""));
    let decimals = decimals.trim_end_matches('0');
    let ok = !units.is_empty()
        && units.bytes().all(|b| b.is_ascii_digit())
        && decimals.len() <= 2
        && decimals.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| Cents::parse_decimal(&format!("{units}.{decimals:0<2}")))
        .flatten()
        .ok_or_else(|| {
            at(
                path,
                format!("importo '{text}' non valido (euro, due decimali)"),
            )
        })
}

/// An instant (`2025-01-01T12:20:30.800000Z`); kept to the second, as
/// `dataOraFlusso`.
fn instant(path: &str, text: &str) -> Result<DateTime<Utc>, FdrError> {
    let t = DateTime::parse_from_rfc3339(text)
        .map_err(|_| at(path, format!("'{text}' non è una data e ora ISO 8601")))?;
    let t = t.with_timezone(&Utc);
    Ok(t - chrono::Duration::nanoseconds(i64::from(t.timestamp_subsec_nanos())))
}

/// A business day: a date, or the date part of an instant (the spec keeps
/// the original calendar day).
fn day(path: &str, text: &str) -> Result<NaiveDate, FdrError> {
    text.get(..10)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .ok_or_else(|| at(path, format!("'{text}' non è una data")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_read_from_their_text() {
        let n = |s: &str| serde_json::from_str::<serde_json::Number>(s).unwrap();
        assert_eq!(amount("x", &n("100.95")), Ok(Cents(10_095)));
        assert_eq!(amount("x", &n("0.01")), Ok(Cents(1)));
        assert_eq!(amount("x", &n("5")), Ok(Cents(500)));
        assert_eq!(amount("x", &n("1234567.1")), Ok(Cents(123_456_710)));
        assert!(amount("x", &n("0.001")).is_err());
        assert!(amount("x", &n("-1.00")).is_err());
    }
}
