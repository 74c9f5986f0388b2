//! Reporting flows (FdR, *flussi di rendicontazione*): a PSP's list of the
//! payments that one bank transfer to an Ente carries.
//!
//! A flow is identified by its id, and a PSP may send it again with a later
//! `dataOraFlusso` (until D+4): that version replaces the earlier one, so a
//! flow's natural key is the id together with that date.

use crate::Cents;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashSet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportingFlow {
    /// `identificativoFlusso`, usually `<settlement date><PSP id>-<n>`.
    pub flow_id: String,
    /// `dataOraFlusso`: which version of the flow this is.
    pub flow_date_time: DateTime<Utc>,
    /// `identificativoUnivocoRegolamento`: the bank transfer's TRN or
    /// EndToEndId, which the treasury reports too.
    pub settlement_ref: String,
    pub settlement_date: NaiveDate,
    /// The sending PSP (`istitutoMittente`).
    pub psp_id: String,
    pub psp_id_kind: PartyIdKind,
    pub psp_name: Option<String>,
    /// `codiceBicBancaDiRiversamento`.
    pub bic: Option<String>,
    /// The receiving Ente's fiscal code (`istitutoRicevente`).
    pub ente: String,
    pub ente_name: Option<String>,
    /// `numeroTotalePagamenti` and `importoTotalePagamenti` as declared:
    /// [`ReportingFlow::inconsistencies`] says whether the lines agree.
    pub declared_count: u64,
    pub declared_total: Cents,
    pub payments: Vec<FlowPayment>,
    /// FdR 3's revision of the flow; none for a `FlussoRiversamento`
    /// document, whose version is its `dataOraFlusso`.
    pub revision: Option<u64>,
}

/// How the sending PSP is identified (`tipoIdentificativoUnivoco`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartyIdKind {
    /// G: a legal person's fiscal code.
    LegalPerson,
    /// A: an ABI code.
    Abi,
    /// B: a BIC.
    Bic,
}

impl PartyIdKind {
    pub fn from_code(code: &str) -> Option<PartyIdKind> {
        match code {
            "G" => Some(PartyIdKind::LegalPerson),
            "A" => Some(PartyIdKind::Abi),
            "B" => Some(PartyIdKind::Bic),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            PartyIdKind::LegalPerson => "G",
            PartyIdKind::Abi => "A",
            PartyIdKind::Bic => "B",
        }
    }
}

/// One line of a flow: one transfer of one payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowPayment {
    pub iuv: String,
    /// `identificativoUnivocoRiscossione`: the PSP's id of the collection
    /// (the receipt's id for payments made through the Node).
    pub iur: String,
    /// `indiceDatiSingoloPagamento`: which transfer of the payment (1 to 5,
    /// the receipt's `idTransfer`). Optional in the schema: absent means 1.
    pub transfer_index: Option<u8>,
    pub amount: Cents,
    pub outcome: FlowOutcome,
    pub outcome_date: NaiveDate,
}

impl FlowPayment {
    pub fn transfer(&self) -> u8 {
        self.transfer_index.unwrap_or(1)
    }
}

/// `codiceEsitoSingoloPagamento`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowOutcome {
    /// 0: paid, with a receipt.
    Paid,
    /// 3: revoked (flows of version 1.0.4 and before).
    Revoked,
    /// 4: paid in stand-in, with a receipt.
    StandIn,
    /// 8: paid in stand-in, without a receipt.
    StandInWithoutReceipt,
    /// 9: paid without a receipt.
    PaidWithoutReceipt,
}

impl FlowOutcome {
    pub fn from_code(code: &str) -> Option<FlowOutcome> {
        match code {
            "0" => Some(FlowOutcome::Paid),
            "3" => Some(FlowOutcome::Revoked),
            "4" => Some(FlowOutcome::StandIn),
            "8" => Some(FlowOutcome::StandInWithoutReceipt),
            "9" => Some(FlowOutcome::PaidWithoutReceipt),
            _ => None,
        }
    }

    pub fn code(self) -> u8 {
        match self {
            FlowOutcome::Paid => 0,
            FlowOutcome::Revoked => 3,
            FlowOutcome::StandIn => 4,
            FlowOutcome::StandInWithoutReceipt => 8,
            FlowOutcome::PaidWithoutReceipt => 9,
        }
    }

    /// Whether the Ente should hold a receipt for this line: for 8 and 9
    /// the money comes without one, and the position is paid by the flow.
    pub fn has_receipt(self) -> bool {
        matches!(self, FlowOutcome::Paid | FlowOutcome::StandIn)
    }

    /// The line's effect on the transfer's amount: a revocation takes
    /// money back.
    pub fn signed(self, amount: Cents) -> Cents {
        match self {
            FlowOutcome::Revoked => Cents(-amount.0),
            _ => amount,
        }
    }
}

/// What is wrong inside a flow that the schema accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowInconsistency {
    /// `numeroTotalePagamenti` is not the number of lines.
    Count { declared: u64, lines: u64 },
    /// `importoTotalePagamenti` is not the sum of the lines.
    Total { declared: Cents, lines: Cents },
    /// The same (IUV, IUR, index) twice.
    DuplicateLine { iuv: String, iur: String, index: u8 },
}

impl ReportingFlow {
    /// The money the flow's lines move: revocations count negative.
    pub fn lines_total(&self) -> Cents {
        Cents(
            self.payments
                .iter()
                .map(|p| p.outcome.signed(p.amount).0)
                .sum(),
        )
    }

    /// Declared totals the lines contradict, and repeated lines. A flow
    /// with these is still stored: they become anomalies, never silent
    /// matches.
    pub fn inconsistencies(&self) -> Vec<FlowInconsistency> {
        let mut out = Vec::new();
        let lines = self.payments.len() as u64;
        if lines != self.declared_count {
            out.push(FlowInconsistency::Count {
                declared: self.declared_count,
                lines,
            });
        }
        // Some PSPs add revocations into the total instead of taking them
        // out; either reading of the lines is accepted.
        let signed = self.lines_total();
        let plain = Cents(self.payments.iter().map(|p| p.amount.0).sum());
        if self.declared_total != signed && self.declared_total != plain {
            out.push(FlowInconsistency::Total {
                declared: self.declared_total,
                lines: signed,
            });
        }
        let mut seen = HashSet::new();
        for p in &self.payments {
            if !seen.insert((&p.iuv, &p.iur, p.transfer())) {
                out.push(FlowInconsistency::DuplicateLine {
                    iuv: p.iuv.clone(),
                    iur: p.iur.clone(),
                    index: p.transfer(),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(lines: &[(i64, FlowOutcome)], count: u64, total: i64) -> ReportingFlow {
        let date = NaiveDate::from_ymd_opt(2026, 10, 2).unwrap();
        ReportingFlow {
            flow_id: "2026-10-02PSP-1".into(),
            flow_date_time: Utc::now(),
            settlement_ref: "TRN1".into(),
            settlement_date: date,
            psp_id: "PSP".into(),
            psp_id_kind: PartyIdKind::Bic,
            psp_name: None,
            bic: None,
            ente: "80000130585".into(),
            ente_name: None,
            revision: None,
            declared_count: count,
            declared_total: Cents(total),
            payments: lines
                .iter()
                .enumerate()
                .map(|(i, (cents, outcome))| FlowPayment {
                    iuv: format!("IUV{i}"),
                    iur: format!("IUR{i}"),
                    transfer_index: Some(1),
                    amount: Cents(*cents),
                    outcome: *outcome,
                    outcome_date: date,
                })
                .collect(),
        }
    }

    #[test]
    fn totals_that_agree_are_consistent() {
        let f = flow(
            &[
                (100, FlowOutcome::Paid),
                (50, FlowOutcome::PaidWithoutReceipt),
            ],
            2,
            150,
        );
        assert!(f.inconsistencies().is_empty());
        assert_eq!(f.lines_total(), Cents(150));
    }

    #[test]
    fn a_revocation_may_be_taken_out_of_the_total_or_added_in() {
        let lines = [(100, FlowOutcome::Paid), (30, FlowOutcome::Revoked)];
        assert!(flow(&lines, 2, 70).inconsistencies().is_empty());
        assert!(flow(&lines, 2, 130).inconsistencies().is_empty());
        assert_eq!(
            flow(&lines, 2, 100).inconsistencies(),
            vec![FlowInconsistency::Total {
                declared: Cents(100),
                lines: Cents(70)
            }]
        );
    }

    #[test]
    fn a_wrong_count_and_a_repeated_line_are_reported() {
        let mut f = flow(
            &[(100, FlowOutcome::Paid), (100, FlowOutcome::Paid)],
            3,
            200,
        );
        f.payments[1].iuv = f.payments[0].iuv.clone();
        f.payments[1].iur = f.payments[0].iur.clone();
        let found = f.inconsistencies();
        assert!(found.contains(&FlowInconsistency::Count {
            declared: 3,
            lines: 2
        }));
        assert!(
            found
                .iter()
                .any(|i| matches!(i, FlowInconsistency::DuplicateLine { .. }))
        );
    }

    #[test]
    fn only_paid_and_stand_in_lines_expect_a_receipt() {
        assert!(FlowOutcome::Paid.has_receipt());
        assert!(FlowOutcome::StandIn.has_receipt());
        assert!(!FlowOutcome::StandInWithoutReceipt.has_receipt());
        assert!(!FlowOutcome::PaidWithoutReceipt.has_receipt());
        for code in ["0", "3", "4", "8", "9"] {
            let o = FlowOutcome::from_code(code).unwrap();
            assert_eq!(o.code().to_string(), code);
        }
        assert_eq!(FlowOutcome::from_code("1"), None);
    }
}
