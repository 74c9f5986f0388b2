//! Manual regularization: a clerk ties an open sospeso to the reporting
//! flows it pays, when automatic matching found none or one of another
//! amount (a PSP that sent two days' flows in one transfer, a causale the
//! bank cut). The rules the tie must keep, before anything is written.

use incasso_core::Cents;
use std::collections::HashSet;

/// The longest note kept with a tie.
pub const MAX_NOTE_CHARS: usize = 1000;

/// Why a tie is refused, in Italian for the clerk who asked for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TieError {
    #[error("flussi: indicare almeno un flusso di rendicontazione")]
    NoFlows,
    #[error("flussi: il flusso {0} è indicato più di una volta")]
    Repeated(String),
    #[error("nota: obbligatoria, per spiegare perché il sospeso si regolarizza a mano")]
    NoNote,
    #[error("nota: al più {MAX_NOTE_CHARS} caratteri")]
    LongNote,
    #[error(
        "flussi: i flussi scelti sommano {} euro ma il sospeso è di {} euro: differenza di {} euro ({})",
        .flows.to_italian(),
        .sospeso.to_italian(),
        Cents(.flows.0 - .sospeso.0).to_italian(),
        if .flows.0 < .sospeso.0 { "i flussi non coprono il sospeso" } else { "i flussi superano il sospeso" }
    )]
    Amount { sospeso: Cents, flows: Cents },
}

impl TieError {
    /// The stable code programs read.
    pub fn code(&self) -> &'static str {
        match self {
            TieError::NoFlows | TieError::Repeated(_) => "REGULARIZATION_FLOWS",
            TieError::NoNote | TieError::LongNote => "REGULARIZATION_NOTE",
            TieError::Amount { .. } => "REGULARIZATION_AMOUNT",
        }
    }
}

/// Checks a tie of a sospeso of `sospeso` to `flows` (each flow's id and
/// the money its lines move), with the clerk's `note`: at least one flow,
/// none twice, a note, and the flows' total equal to the sospeso's amount
/// to the cent (a tie that leaves money over or short would make the
/// reversale disagree with the bank). Answers the flows' total.
pub fn check_tie(sospeso: Cents, flows: &[(&str, Cents)], note: &str) -> Result<Cents, TieError> {
    let note = note.trim();
    if note.is_empty() {
        return Err(TieError::NoNote);
    }
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(TieError::LongNote);
    }
    if flows.is_empty() {
        return Err(TieError::NoFlows);
    }
    let mut seen = HashSet::new();
    for (id, _) in flows {
        if !seen.insert(*id) {
            return Err(TieError::Repeated(id.to_string()));
        }
    }
    // An overflowing sum cannot equal any sospeso: the largest there is.
    let total = Cents::sum(flows.iter().map(|(_, c)| *c)).unwrap_or(Cents(i64::MAX));
    if total != sospeso {
        return Err(TieError::Amount {
            sospeso,
            flows: total,
        });
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flows_must_add_up_to_the_sospeso_exactly() {
        let flows = [("F1", Cents(10_000)), ("F2", Cents(5_777))];
        assert_eq!(
            check_tie(Cents(15_777), &flows, "due giorni"),
            Ok(Cents(15_777))
        );
        let e = check_tie(Cents(15_778), &flows, "due giorni").unwrap_err();
        assert_eq!(e.code(), "REGULARIZATION_AMOUNT");
        assert_eq!(
            e.to_string(),
            "flussi: i flussi scelti sommano 157,77 euro ma il sospeso è di 157,78 euro: \
             differenza di -0,01 euro (i flussi non coprono il sospeso)"
        );
        let e = check_tie(Cents(15_000), &flows, "x").unwrap_err();
        assert!(e.to_string().contains("differenza di 7,77 euro"), "{e}");
        assert!(e.to_string().contains("superano"), "{e}");
    }

    #[test]
    fn a_tie_needs_flows_once_each_and_a_note() {
        assert_eq!(check_tie(Cents(1), &[], "n"), Err(TieError::NoFlows));
        assert_eq!(
            check_tie(Cents(2), &[("F", Cents(1)), ("F", Cents(1))], "n"),
            Err(TieError::Repeated("F".into()))
        );
        assert_eq!(
            check_tie(Cents(1), &[("F", Cents(1))], "   "),
            Err(TieError::NoNote)
        );
        let long = "x".repeat(MAX_NOTE_CHARS + 1);
        assert_eq!(
            check_tie(Cents(1), &[("F", Cents(1))], &long),
            Err(TieError::LongNote)
        );
        assert!(matches!(
            check_tie(Cents(1), &[("A", Cents(i64::MAX)), ("B", Cents(1))], "n"),
            Err(TieError::Amount { .. })
        ));
    }
}
