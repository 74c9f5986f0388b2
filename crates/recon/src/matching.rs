//! Matching the treasury's sospesi to the reporting flows they pay, and
//! classifying each transfer by which of its four sources agree.
//!
//! A sospeso is matched to a flow, in this order:
//! 1. by the flow id its causale names, with an equal amount;
//! 2. by the transfer's reference (TRN or EndToEndId) equal to the flow's
//!    `identificativoUnivocoRegolamento`, with an equal amount;
//! 3. by a known flow id found in the causale with its spaces removed
//!    (banks break ids in places the parser cannot guess), equal amount;
//! 4. as one old-style single payment (`/RFB/`, `/RFS/`).
//!
//! A flow named by the causale but with another amount is linked and
//! reported (`AmountMismatch`): never a silent match, and never lost. What
//! matches nothing is reported too. Matching is a pure function of what is
//! known now, so a movement that arrived before its flow simply matches on
//! the next run, after the flow arrives.

use crate::causale::{self, Causale};
use incasso_core::Cents;
use incasso_core::treasury::{Operation, TreasuryMovement};
use std::collections::{HashMap, HashSet};

/// What matching needs of a flow (its latest version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowKey {
    pub flow_id: String,
    pub settlement_ref: String,
    /// The money the flow's lines move: what its bank transfer carries.
    pub amount: Cents,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    FlowId,
    Reference,
    FlowIdInText,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The sospeso pays this flow.
    Flow { flow_id: String, method: Method },
    /// The sospeso names this flow, but the amounts differ.
    AmountMismatch { flow_id: String, flow_amount: Cents },
    /// An old single payment, by IUV or creditor reference.
    SinglePayment {
        iuv: Option<String>,
        reference: Option<String>,
        amount: Option<Cents>,
    },
    /// Nothing known matches.
    Unmatched,
}

/// One open sospeso's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovementMatch {
    pub movement_id: String,
    pub outcome: Outcome,
}

/// Problems matching finds between flows and movements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anomaly {
    /// A flow no sospeso pays (yet).
    FlowWithoutMovement { flow_id: String },
    /// A sospeso that pays no known flow or payment.
    MovementWithoutFlow { movement_id: String },
    /// A sospeso naming a flow of another amount.
    AmountMismatch {
        movement_id: String,
        flow_id: String,
        movement_amount: Cents,
        flow_amount: Cents,
    },
    /// Two sospesi paying the same flow.
    DuplicateMovement {
        flow_id: String,
        movement_ids: Vec<String>,
    },
}

impl Anomaly {
    /// The stable code programs filter on.
    pub fn code(&self) -> &'static str {
        match self {
            Anomaly::FlowWithoutMovement { .. } => "FLOW_WITHOUT_MOVEMENT",
            Anomaly::MovementWithoutFlow { .. } => "MOVEMENT_WITHOUT_FLOW",
            Anomaly::AmountMismatch { .. } => "AMOUNT_MISMATCH",
            Anomaly::DuplicateMovement { .. } => "DUPLICATE_MOVEMENT",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matching {
    pub matches: Vec<MovementMatch>,
    pub anomalies: Vec<Anomaly>,
}

/// The sospesi still open: executed provisional receipts that no reversal
/// (`STORNATO`) undoes. Reversals of unknown movements are ignored.
pub fn open_sospesi(movements: &[TreasuryMovement]) -> Vec<&TreasuryMovement> {
    let reversed: HashSet<_> = movements
        .iter()
        .filter(|m| m.operation == Operation::Reversed)
        .map(|m| m.document_key())
        .collect();
    movements
        .iter()
        .filter(|m| m.is_open_sospeso() && !reversed.contains(&m.document_key()))
        .collect()
}

/// Matches every open sospeso among `movements` against `flows`.
pub fn match_all(flows: &[FlowKey], movements: &[TreasuryMovement]) -> Matching {
    let by_id: HashMap<String, &FlowKey> = flows
        .iter()
        .map(|f| (f.flow_id.to_ascii_uppercase(), f))
        .collect();
    let mut by_reference: HashMap<&str, Vec<&FlowKey>> = HashMap::new();
    for f in flows {
        by_reference
            .entry(f.settlement_ref.as_str())
            .or_default()
            .push(f);
    }
    let mut out = Matching::default();
    let mut paid_by: HashMap<&str, Vec<String>> = HashMap::new();
    for m in open_sospesi(movements) {
        let outcome = match_one(m, &by_id, &by_reference, flows);
        match &outcome {
            Outcome::Flow { flow_id, .. } => {
                let flow = by_id[&flow_id.to_ascii_uppercase()];
                paid_by
                    .entry(flow.flow_id.as_str())
                    .or_default()
                    .push(m.movement_id.clone());
            }
            Outcome::AmountMismatch {
                flow_id,
                flow_amount,
            } => out.anomalies.push(Anomaly::AmountMismatch {
                movement_id: m.movement_id.clone(),
                flow_id: flow_id.clone(),
                movement_amount: m.amount,
                flow_amount: *flow_amount,
            }),
            Outcome::Unmatched => out.anomalies.push(Anomaly::MovementWithoutFlow {
                movement_id: m.movement_id.clone(),
            }),
            Outcome::SinglePayment { .. } => {}
        }
        out.matches.push(MovementMatch {
            movement_id: m.movement_id.clone(),
            outcome,
        });
    }
    for f in flows {
        match paid_by.get(f.flow_id.as_str()) {
            None => out.anomalies.push(Anomaly::FlowWithoutMovement {
                flow_id: f.flow_id.clone(),
            }),
            Some(ids) if ids.len() > 1 => out.anomalies.push(Anomaly::DuplicateMovement {
                flow_id: f.flow_id.clone(),
                movement_ids: ids.clone(),
            }),
            Some(_) => {}
        }
    }
    out
}

fn match_one(
    m: &TreasuryMovement,
    by_id: &HashMap<String, &FlowKey>,
    by_reference: &HashMap<&str, Vec<&FlowKey>>,
    flows: &[FlowKey],
) -> Outcome {
    let parsed = causale::parse(&m.causale);
    // 1. The flow the causale names.
    if let Some(Causale::Flow { flow_id }) = &parsed
        && let Some(f) = by_id.get(&flow_id.to_ascii_uppercase())
    {
        return if f.amount == m.amount {
            Outcome::Flow {
                flow_id: f.flow_id.clone(),
                method: Method::FlowId,
            }
        } else {
            Outcome::AmountMismatch {
                flow_id: f.flow_id.clone(),
                flow_amount: f.amount,
            }
        };
    }
    // 2. The transfer's own reference.
    for reference in [m.trn.as_deref(), m.end_to_end_id.as_deref()]
        .into_iter()
        .flatten()
    {
        if let Some(candidates) = by_reference.get(reference)
            && let Some(f) = candidates.iter().find(|f| f.amount == m.amount)
        {
            return Outcome::Flow {
                flow_id: f.flow_id.clone(),
                method: Method::Reference,
            };
        }
    }
    // 3. A known flow id anywhere in the causale, spaces removed. Only
    // worth the scan when the causale looks like a flow's.
    let squeezed = causale::squeezed(&m.causale);
    if squeezed.contains("URI") || squeezed.contains("RIVERSAMENTO") {
        let found: Vec<&FlowKey> = flows
            .iter()
            .filter(|f| f.amount == m.amount && squeezed.contains(&f.flow_id.to_ascii_uppercase()))
            .collect();
        // The longest id wins: an id may be a prefix of another.
        if let Some(f) = found.iter().max_by_key(|f| f.flow_id.len()) {
            return Outcome::Flow {
                flow_id: f.flow_id.clone(),
                method: Method::FlowIdInText,
            };
        }
    }
    // 4. The old single-payment forms.
    match parsed {
        Some(Causale::SinglePayment { iuv, amount }) => Outcome::SinglePayment {
            iuv: Some(iuv),
            reference: None,
            amount,
        },
        Some(Causale::CreditorReference { reference, amount }) => Outcome::SinglePayment {
            iuv: None,
            reference: Some(reference),
            amount,
        },
        _ => Outcome::Unmatched,
    }
}

/// Which of a transfer's four sources know it, as P4PA classifies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sources {
    /// The debt position's transfer (what was owed).
    pub position: bool,
    /// The receipt (RT) from the Node.
    pub receipt: bool,
    /// A line of a reporting flow.
    pub flow: bool,
    /// The flow's money, seen at the treasury.
    pub treasury: bool,
}

/// A transfer's reconciliation state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Classification {
    /// All four agree: the money is there and attributed.
    Reconciled,
    /// Paid and reported; the treasury has not shown the money yet.
    AwaitingTreasury,
    /// Paid; no flow reports it yet.
    AwaitingFlow,
    /// Reported by a flow, with no receipt (outcomes 8 and 9 expect none;
    /// for the others it is an anomaly).
    FlowWithoutReceipt,
    /// A receipt or flow line for nothing the Ente was owed.
    UnknownDebt,
    /// Owed, nothing paid yet.
    Unpaid,
}

impl Classification {
    pub fn code(self) -> &'static str {
        match self {
            Classification::Reconciled => "RECONCILED",
            Classification::AwaitingTreasury => "AWAITING_TREASURY",
            Classification::AwaitingFlow => "AWAITING_FLOW",
            Classification::FlowWithoutReceipt => "FLOW_WITHOUT_RECEIPT",
            Classification::UnknownDebt => "UNKNOWN_DEBT",
            Classification::Unpaid => "UNPAID",
        }
    }
}

pub fn classify(s: Sources) -> Classification {
    match s {
        Sources {
            position: false,
            receipt,
            flow,
            ..
        } if receipt || flow => Classification::UnknownDebt,
        Sources {
            receipt: true,
            flow: true,
            treasury: true,
            ..
        } => Classification::Reconciled,
        Sources {
            receipt: true,
            flow: true,
            treasury: false,
            ..
        } => Classification::AwaitingTreasury,
        Sources {
            receipt: true,
            flow: false,
            ..
        } => Classification::AwaitingFlow,
        Sources {
            receipt: false,
            flow: true,
            ..
        } => Classification::FlowWithoutReceipt,
        _ => Classification::Unpaid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use incasso_core::treasury::{Direction, DocumentKind};

    fn flow(id: &str, trn: &str, cents: i64) -> FlowKey {
        FlowKey {
            flow_id: id.into(),
            settlement_ref: trn.into(),
            amount: Cents(cents),
        }
    }

    fn sospeso(n: u32, causale: &str, cents: i64, trn: Option<&str>) -> TreasuryMovement {
        TreasuryMovement {
            movement_id: format!("2026/0000001/{n:07}/ESEGUITO"),
            ente: "80000130585".into(),
            account: "0000001".into(),
            year: 2026,
            direction: Direction::Income,
            document: DocumentKind::ProvisionalIncome,
            operation: Operation::Executed,
            document_number: format!("{n:07}"),
            amount: Cents(cents),
            booking_date: NaiveDate::from_ymd_opt(2026, 10, 3).unwrap(),
            value_date: None,
            payer: Some("PSP".into()),
            causale: causale.into(),
            trn: trn.map(str::to_string),
            end_to_end_id: None,
        }
    }

    #[test]
    fn each_way_of_matching_and_each_anomaly() {
        let flows = vec![
            flow("2026-10-02PSPA-1", "TRN-A", 10_000),
            flow("2026-10-02PSPB-1", "TRN-B", 20_000),
            flow("2026-10-02PSPC-1", "TRN-C", 30_000),
            flow("2026-10-02PSPD-1", "TRN-D", 40_000),
            flow("2026-10-02PSPE-1", "TRN-E", 50_000),
            flow("2026-10-02PSPF-1", "TRN-F", 60_000),
        ];
        let mut reversed = sospeso(
            9,
            "/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPF-1",
            60_000,
            None,
        );
        reversed.operation = Operation::Reversed;
        let movements = vec![
            sospeso(
                1,
                "/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPA-1",
                10_000,
                None,
            ),
            sospeso(2, "BONIFICO PSP B", 20_000, Some("TRN-B")),
            // Broken where the parser cannot tell: after the PSP's letters.
            sospeso(
                3,
                "/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSP C-1",
                30_000,
                None,
            ),
            sospeso(
                4,
                "/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPD-1",
                39_999,
                None,
            ),
            sospeso(5, "/RFB/01000000001234519/12.00", 1_200, None),
            sospeso(6, "GIROCONTO INTERNO", 777, None),
            sospeso(
                7,
                "/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPA-1",
                10_000,
                None,
            ),
            sospeso(
                9,
                "/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPF-1",
                60_000,
                None,
            ),
            reversed,
        ];
        let result = match_all(&flows, &movements);
        let outcome = |n: u32| {
            result
                .matches
                .iter()
                .find(|m| m.movement_id == format!("2026/0000001/{n:07}/ESEGUITO"))
                .map(|m| m.outcome.clone())
        };
        assert_eq!(
            outcome(1),
            Some(Outcome::Flow {
                flow_id: "2026-10-02PSPA-1".into(),
                method: Method::FlowId
            })
        );
        assert_eq!(
            outcome(2),
            Some(Outcome::Flow {
                flow_id: "2026-10-02PSPB-1".into(),
                method: Method::Reference
            })
        );
        assert_eq!(
            outcome(3),
            Some(Outcome::Flow {
                flow_id: "2026-10-02PSPC-1".into(),
                method: Method::FlowIdInText
            })
        );
        assert!(matches!(outcome(4), Some(Outcome::AmountMismatch { .. })));
        assert!(matches!(
            outcome(5),
            Some(Outcome::SinglePayment { iuv: Some(_), .. })
        ));
        assert_eq!(outcome(6), Some(Outcome::Unmatched));
        // The reversed sospeso is not open any more.
        assert_eq!(outcome(9), None);
        let codes: HashSet<&str> = result.anomalies.iter().map(Anomaly::code).collect();
        assert_eq!(
            codes,
            HashSet::from([
                "AMOUNT_MISMATCH",
                "MOVEMENT_WITHOUT_FLOW",
                "DUPLICATE_MOVEMENT",
                "FLOW_WITHOUT_MOVEMENT",
            ])
        );
        // D (mismatched) and F (reversed) have no movement; E never had one.
        let without: HashSet<&str> = result
            .anomalies
            .iter()
            .filter_map(|a| match a {
                Anomaly::FlowWithoutMovement { flow_id } => Some(flow_id.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            without,
            HashSet::from(["2026-10-02PSPD-1", "2026-10-02PSPE-1", "2026-10-02PSPF-1"])
        );
    }

    #[test]
    fn a_movement_that_came_first_matches_once_its_flow_is_known() {
        let m = vec![sospeso(
            1,
            "/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPA-1",
            10_000,
            None,
        )];
        let before = match_all(&[], &m);
        assert_eq!(before.matches[0].outcome, Outcome::Unmatched);
        let after = match_all(&[flow("2026-10-02PSPA-1", "TRN-A", 10_000)], &m);
        assert!(matches!(after.matches[0].outcome, Outcome::Flow { .. }));
        assert!(after.anomalies.is_empty());
    }

    #[test]
    fn classification_by_sources() {
        let s = |position, receipt, flow, treasury| Sources {
            position,
            receipt,
            flow,
            treasury,
        };
        assert_eq!(
            classify(s(true, true, true, true)),
            Classification::Reconciled
        );
        assert_eq!(
            classify(s(true, true, true, false)),
            Classification::AwaitingTreasury
        );
        assert_eq!(
            classify(s(true, true, false, false)),
            Classification::AwaitingFlow
        );
        assert_eq!(
            classify(s(true, false, true, true)),
            Classification::FlowWithoutReceipt
        );
        assert_eq!(
            classify(s(false, true, false, false)),
            Classification::UnknownDebt
        );
        assert_eq!(
            classify(s(false, false, true, true)),
            Classification::UnknownDebt
        );
        assert_eq!(
            classify(s(true, false, false, false)),
            Classification::Unpaid
        );
    }
}
