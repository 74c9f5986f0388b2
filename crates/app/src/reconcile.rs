//! Reconciliation, end to end for one Ente: take in reporting flows and
//! treasury files (each whole or not at all, each once), then match every
//! open sospeso to its flow and record what does not add up.
//!
//! Matching is rerun from what is stored, so its result never depends on
//! the order things arrived in: a sospeso that came before its flow is
//! matched by the run after the flow arrives.

use chrono::{DateTime, Utc};
use incasso_core::Cents;
use incasso_core::fdr::ReportingFlow;
use incasso_recon::fdr::{self, FdrError};
use incasso_recon::matching::{self, Anomaly, FlowKey, Method, Outcome};
use incasso_recon::{TreasuryError, camt, opi};
use incasso_store::reporting::{MANUAL, ManualTie};
use incasso_store::{AnomalyRecord, FlowIntake, MovementMatchRecord, Store, StoreError};
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum ReconError {
    #[error(transparent)]
    Flow(#[from] FdrError),
    #[error(transparent)]
    Treasury(#[from] TreasuryError),
    #[error("ente {0} sconosciuto: il file non è stato acquisito")]
    UnknownEnte(String),
    #[error("il file è dell'ente {found}, non di {expected}")]
    OtherEnte { expected: String, found: String },
    #[error("nodo dei pagamenti: {0}")]
    Node(String),
    /// None of the Ente's stations has a connection to the Node: the
    /// Ente's configuration, not the Node, stands in the way.
    #[error("nessuna stazione dell'ente ha un collegamento al nodo")]
    NoConnection,
    #[error("mancano le impostazioni della tesoreria dell'ente")]
    NoTreasurySettings,
    #[error("movimento {0} sconosciuto")]
    UnknownMovement(String),
    #[error("{} del sospeso non sono attribuiti a nessun accertamento: la reversale va completata a mano", .0.to_italian())]
    Unattributed(Cents),
    #[error(transparent)]
    Reversale(#[from] incasso_recon::reversale::ReversaleError),
    #[error("il sospeso {0} non è abbinato a un flusso")]
    NotMatched(String),
    /// A manual tie that breaks its rules (flows, note, amounts).
    #[error(transparent)]
    Tie(#[from] incasso_recon::regularization::TieError),
    /// Only a sospeso automatic matching could not place is tied by hand.
    #[error("il movimento {movement_id} non si può regolarizzare a mano: {why}")]
    NotTieable { movement_id: String, why: String },
    #[error("flussi: il flusso {flow_id} è già collegato al sospeso {movement_id}")]
    FlowTaken {
        flow_id: String,
        movement_id: String,
    },
    #[error("flussi: il flusso {0} non esiste")]
    UnknownFlow(String),
    #[error("il sospeso {0} non è regolarizzato a mano")]
    NotTied(String),
    #[error("errore interno: {0}")]
    Internal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ReconError {
    /// The stable code programs read.
    pub fn code(&self) -> &'static str {
        match self {
            ReconError::Flow(_) => FdrError::CODE,
            ReconError::Treasury(_) => TreasuryError::CODE,
            ReconError::UnknownEnte(_) => "UNKNOWN_ENTE",
            ReconError::OtherEnte { .. } => "OTHER_ENTE",
            ReconError::NotMatched(_) => "MOVEMENT_NOT_MATCHED",
            ReconError::Tie(e) => e.code(),
            ReconError::NotTieable { .. } => "MOVEMENT_NOT_TIEABLE",
            ReconError::FlowTaken { .. } => "FLOW_ALREADY_TIED",
            ReconError::UnknownFlow(_) => "FLOW_UNKNOWN",
            ReconError::NotTied(_) => "NOT_REGULARIZED",
            ReconError::Node(_) => "NODE_UNAVAILABLE",
            ReconError::NoConnection => "NO_CONNECTION",
            ReconError::NoTreasurySettings => "TREASURY_SETTINGS_MISSING",
            ReconError::UnknownMovement(_) => "MOVEMENT_UNKNOWN",
            ReconError::Unattributed(_) => "UNATTRIBUTED",
            ReconError::Reversale(_) => incasso_recon::reversale::ReversaleError::CODE,
            ReconError::Internal(_) => "INTERNAL",
            ReconError::Store(_) => "STORE_ERROR",
        }
    }
}

/// Takes in one reporting flow for `ente`.
pub async fn take_flow(
    store: &Store,
    ente: &str,
    bytes: &[u8],
    now: DateTime<Utc>,
) -> Result<FlowIntake, ReconError> {
    Ok(take_flow_named(store, ente, bytes, now).await?.1)
}

/// As [`take_flow`], also saying which flow it was.
pub async fn take_flow_named(
    store: &Store,
    ente: &str,
    bytes: &[u8],
    now: DateTime<Utc>,
) -> Result<(String, FlowIntake), ReconError> {
    take_flows(store, ente, &[bytes], now).await?.remove(0)
}

/// Takes in several reporting flows for `ente`: each is parsed and checked
/// on its own (one bad flow never stops the others, and is answered with
/// its error in its place), and the good ones are stored in one
/// transaction. Only an unknown Ente or the store fails the whole call.
pub async fn take_flows<B: AsRef<[u8]>>(
    store: &Store,
    ente: &str,
    files: &[B],
    now: DateTime<Utc>,
) -> Result<Vec<Result<(String, FlowIntake), ReconError>>, ReconError> {
    known_ente(store, ente).await?;
    store_parsed_flows(store, ente, parse_flows(ente, files), now).await
}

/// Parses flows for `ente`, each on its own. Pure CPU work, apart from
/// the store, so that a caller may parse the next batch while the store
/// writes this one.
pub fn parse_flows<B: AsRef<[u8]>>(
    ente: &str,
    files: &[B],
) -> Vec<Result<ReportingFlow, ReconError>> {
    files
        .iter()
        .map(|file| match fdr::parse(file.as_ref()) {
            Ok(flow) if flow.ente != ente => Err(ReconError::OtherEnte {
                expected: ente.to_string(),
                found: flow.ente,
            }),
            Ok(flow) => Ok(flow),
            Err(e) => Err(e.into()),
        })
        .collect()
}

/// Stores what [`parse_flows`] read, the good flows in one transaction,
/// answering each in its place. The Ente must be known.
pub async fn store_parsed_flows(
    store: &Store,
    ente: &str,
    parsed: Vec<Result<ReportingFlow, ReconError>>,
    now: DateTime<Utc>,
) -> Result<Vec<Result<(String, FlowIntake), ReconError>>, ReconError> {
    let mut answers = Vec::with_capacity(parsed.len());
    let mut good = Vec::new();
    let mut good_at = Vec::new();
    for p in parsed {
        match p {
            Ok(flow) => {
                good_at.push(answers.len());
                answers.push(Ok((flow.flow_id.clone(), FlowIntake::Stored)));
                good.push(flow);
            }
            Err(e) => answers.push(Err(e)),
        }
    }
    let intakes = store.store_flows(ente, &good, now).await?;
    // Answered as taken in: kept across a power cut first.
    store.durable().await?;
    for (at, intake) in good_at.into_iter().zip(intakes) {
        if let Ok((_, slot)) = &mut answers[at] {
            *slot = intake;
        }
    }
    Ok(answers)
}

/// Takes in a treasury file for `ente`: an OPI journal or camt.053/054,
/// told apart by their root. Returns how many movements were new.
pub async fn take_treasury_file(
    store: &Store,
    ente: &str,
    bytes: &[u8],
    now: DateTime<Utc>,
) -> Result<usize, ReconError> {
    known_ente(store, ente).await?;
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]);
    let movements = if head.contains("flusso_giornale_di_cassa") {
        let journal = opi::parse(bytes)?;
        if journal.ente != ente {
            return Err(ReconError::OtherEnte {
                expected: ente.to_string(),
                found: journal.ente,
            });
        }
        journal.movements
    } else {
        camt::parse(bytes, ente)?
    };
    let new = store.store_movements(ente, &movements, now).await?;
    store.durable().await?;
    Ok(new)
}

/// Takes in a bank's own export of movements (CSV, fixed width, a
/// spreadsheet) through a treasury layout of the Digit BUS. Like a journal,
/// the file is taken whole or refused; a refusal names the first bad rows'
/// lines, fields and reasons.
pub async fn take_treasury_with_layout(
    store: &Store,
    ente: &str,
    layout: &incasso_bus::Layout,
    bytes: Vec<u8>,
    now: DateTime<Utc>,
) -> Result<usize, ReconError> {
    use incasso_bus::treasury::{self, MovementsError};
    known_ente(store, ente).await?;
    let movements =
        treasury::movements(layout, ente, std::io::Cursor::new(bytes)).map_err(|e| match e {
            MovementsError::Rows(rows) => {
                let first = &rows[0];
                let more = if rows.len() > 1 {
                    format!(" (e altre {} righe non valide)", rows.len() - 1)
                } else {
                    String::new()
                };
                ReconError::Treasury(TreasuryError::at(
                    format!("riga {}, campo {}", first.line, first.field),
                    format!("{}: '{}'{more}", first.message, first.value),
                ))
            }
            other => ReconError::Treasury(TreasuryError::at("/", other.to_string())),
        })?;
    let new = store.store_movements(ente, &movements, now).await?;
    store.durable().await?;
    Ok(new)
}

async fn known_ente(store: &Store, ente: &str) -> Result<(), ReconError> {
    match store.get_ente(ente).await {
        Ok(_) => Ok(()),
        Err(StoreError::NotFound(_)) => Err(ReconError::UnknownEnte(ente.to_string())),
        Err(e) => Err(e.into()),
    }
}

/// What matching needs of the stored flows: the money their lines move.
fn flow_keys(flows: &[incasso_store::StoredFlow]) -> Vec<FlowKey> {
    flows
        .iter()
        .map(|f| FlowKey {
            flow_id: f.flow_id.clone(),
            settlement_ref: f.settlement_ref.clone(),
            amount: f.lines_total,
        })
        .collect()
}

/// What a run found, for people and programs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub flows: usize,
    pub open_sospesi: usize,
    pub matched: usize,
    pub anomalies: BTreeMap<String, usize>,
    /// Flow lines by which of their four sources agree (position, receipt,
    /// flow, treasury): RECONCILED, AWAITING_TREASURY, ...
    pub lines_by_class: BTreeMap<String, usize>,
}

/// Matches the Ente's open sospesi to its flows and replaces the recorded
/// results with this run's.
pub async fn reconcile(
    store: &Store,
    ente: &str,
    now: DateTime<Utc>,
) -> Result<Summary, ReconError> {
    let ente_record = store.get_ente(ente).await?;
    store.refresh_recon_statistics().await?;
    let flows = store.current_flows(ente).await?;
    // Sospesi tied to their flows by hand stay so: they and their flows
    // take no part in matching, so no run can give those flows to another
    // sospeso or report them as unpaid.
    let ties = store.manual_ties(ente).await?;
    let tied_movements: std::collections::HashSet<&str> =
        ties.iter().map(|t| t.movement_id.as_str()).collect();
    let tied_flows: std::collections::HashSet<&str> = ties
        .iter()
        .flat_map(|t| t.flow_ids.iter().map(String::as_str))
        .collect();
    let movements: Vec<_> = store
        .movements(ente)
        .await?
        .into_iter()
        .filter(|m| !tied_movements.contains(m.movement_id.as_str()))
        .collect();
    // Money on an account that is not the Ente's is not the Ente's to
    // match: reported, and left out. OPI accounts are the treasury's own
    // numbers, not IBANs, and are the Ente's by construction.
    let own_ibans: Vec<String> = ente_record
        .iban
        .iter()
        .chain(ente_record.postal_iban.iter())
        .map(|i| i.replace(' ', "").to_ascii_uppercase())
        .collect();
    // Bytes, not characters: an account is the bank's free text, and a
    // slice of a `str` inside a character would panic.
    let looks_like_iban = |a: &str| {
        let b = a.as_bytes();
        b.len() >= 15
            && b[..2].iter().all(u8::is_ascii_alphabetic)
            && b[2..4].iter().all(u8::is_ascii_digit)
    };
    let mut anomalies = Vec::new();
    let (own, foreign): (Vec<_>, Vec<_>) = movements.into_iter().partition(|m| {
        !looks_like_iban(&m.account) || own_ibans.contains(&m.account.to_ascii_uppercase())
    });
    for m in foreign.iter().filter(|m| m.is_open_sospeso()) {
        anomalies.push(AnomalyRecord {
            code: "ACCOUNT_NOT_OF_ENTE".into(),
            subject: m.movement_id.clone(),
            detail: format!("movimento sul conto {}, che non è dell'ente", m.account),
            amount: Some(m.amount),
        });
    }
    let all_keys = flow_keys(&flows);
    let keys: Vec<FlowKey> = all_keys
        .iter()
        .filter(|k| !tied_flows.contains(k.flow_id.as_str()))
        .cloned()
        .collect();
    let result = matching::match_all(&keys, &own);
    let mut matched = 0;
    let mut records: Vec<MovementMatchRecord> = result
        .matches
        .iter()
        .map(|m| {
            let (flow_id, method, status) = match &m.outcome {
                Outcome::Flow { flow_id, method } => {
                    matched += 1;
                    (
                        Some(flow_id.clone()),
                        Some(
                            match method {
                                Method::FlowId => "FLOW_ID",
                                Method::Reference => "REFERENCE",
                                Method::FlowIdInText => "FLOW_ID_IN_TEXT",
                            }
                            .to_string(),
                        ),
                        "MATCHED",
                    )
                }
                Outcome::AmountMismatch { flow_id, .. } => {
                    (Some(flow_id.clone()), None, "AMOUNT_MISMATCH")
                }
                Outcome::SinglePayment { .. } => {
                    (None, Some("SINGLE_PAYMENT".into()), "SINGLE_PAYMENT")
                }
                Outcome::Unmatched => (None, None, "UNMATCHED"),
            };
            MovementMatchRecord {
                movement_id: m.movement_id.clone(),
                flow_id,
                method,
                status: status.to_string(),
            }
        })
        .collect();
    let flow_amount: std::collections::HashMap<&str, Cents> = all_keys
        .iter()
        .map(|k| (k.flow_id.as_str(), k.amount))
        .collect();
    // The ties, kept; one whose flows no longer add up to its sospeso (a
    // flow resent with other lines, or gone) is reported, and kept all the
    // same: undoing it is a person's decision.
    for t in &ties {
        matched += 1;
        records.push(MovementMatchRecord {
            movement_id: t.movement_id.clone(),
            flow_id: t.flow_ids.first().cloned(),
            method: Some(MANUAL.into()),
            status: MANUAL.into(),
        });
        let sospeso = store
            .movement(ente, &t.movement_id)
            .await?
            .map(|m| m.amount);
        let flows_total: Option<i64> = t
            .flow_ids
            .iter()
            .map(|f| flow_amount.get(f.as_str()).map(|c| c.0))
            .sum();
        if let Some(sospeso) = sospeso
            && flows_total != Some(sospeso.0)
        {
            anomalies.push(AnomalyRecord {
                code: "MANUAL_TIE_MISMATCH".into(),
                subject: t.movement_id.clone(),
                detail: match flows_total {
                    Some(total) => format!(
                        "il sospeso regolarizzato a mano riversa {} ma i suoi flussi ({}) ora ne rendicontano {}",
                        sospeso.to_italian(),
                        t.flow_ids.join(", "),
                        Cents(total).to_italian()
                    ),
                    None => format!(
                        "il sospeso regolarizzato a mano è collegato a flussi che non ci sono più ({})",
                        t.flow_ids.join(", ")
                    ),
                },
                amount: flows_total.map(|total| Cents(sospeso.0 - total)),
            });
        }
    }
    let movement_amount: std::collections::HashMap<&str, Cents> = own
        .iter()
        .map(|m| (m.movement_id.as_str(), m.amount))
        .collect();
    for a in &result.anomalies {
        anomalies.push(match a {
            Anomaly::FlowWithoutMovement { flow_id } => AnomalyRecord {
                code: a.code().into(),
                subject: flow_id.clone(),
                detail: "nessun sospeso della tesoreria riversa questo flusso".into(),
                amount: flow_amount.get(flow_id.as_str()).copied(),
            },
            Anomaly::MovementWithoutFlow { movement_id } => AnomalyRecord {
                code: a.code().into(),
                subject: movement_id.clone(),
                detail: "il sospeso non corrisponde a nessun flusso né pagamento noto".into(),
                amount: movement_amount.get(movement_id.as_str()).copied(),
            },
            Anomaly::AmountMismatch {
                movement_id,
                flow_id,
                movement_amount,
                flow_amount,
            } => AnomalyRecord {
                code: a.code().into(),
                subject: movement_id.clone(),
                detail: format!(
                    "il sospeso riversa {} ma il flusso {flow_id} ne rendiconta {}",
                    movement_amount.to_italian(),
                    flow_amount.to_italian()
                ),
                amount: Some(Cents(movement_amount.0 - flow_amount.0)),
            },
            Anomaly::DuplicateMovement {
                flow_id,
                movement_ids,
            } => AnomalyRecord {
                code: a.code().into(),
                subject: flow_id.clone(),
                detail: format!(
                    "più sospesi riversano lo stesso flusso: {}",
                    movement_ids.join(", ")
                ),
                amount: None,
            },
        });
    }
    // Every flow line, by which of its sources agree. Problems are grouped
    // by flow: a flow of another Ente's payments is one anomaly, not a
    // thousand.
    let paid_flows: std::collections::HashSet<&str> = records
        .iter()
        .filter(|r| r.status == "MATCHED")
        .filter_map(|r| r.flow_id.as_deref())
        .chain(tied_flows.iter().copied())
        .collect();
    let mut lines_by_class: BTreeMap<String, usize> = BTreeMap::new();
    let class_of = |flow_id: &str, position: bool, receipt: bool| {
        matching::classify(matching::Sources {
            position,
            receipt,
            flow: true,
            treasury: paid_flows.contains(flow_id),
        })
    };
    // Lines every source agrees with are counted in the database; only the
    // flows with other lines have theirs read.
    let mut to_read = Vec::new();
    for c in store.flow_line_counts(ente).await? {
        if c.clean > 0 {
            let clean_class = class_of(&c.flow_id, true, true);
            *lines_by_class
                .entry(clean_class.code().to_string())
                .or_insert(0) += c.clean as usize;
        }
        if c.clean < c.lines {
            to_read.push(c.flow_id);
        }
    }
    // Per (code, flow): up to ten examples, how many, how much.
    let mut grouped: BTreeMap<(&'static str, String), (Vec<String>, usize, i64)> = BTreeMap::new();
    let mut problem =
        |code: &'static str, flow_id: &str, amount: Cents, what: &dyn Fn() -> String| {
            let e = grouped.entry((code, flow_id.to_string())).or_default();
            if e.0.len() < 10 {
                e.0.push(what());
            }
            e.1 += 1;
            e.2 += amount.0;
        };
    store
        .for_each_line_fact(ente, &to_read, |l| {
            if l.is_clean() {
                return;
            }
            let class = class_of(&l.flow_id, l.has_option, l.has_receipt);
            *lines_by_class.entry(class.code().to_string()).or_insert(0) += 1;
            let expects_receipt = matches!(l.outcome, 0 | 4);
            match class {
                matching::Classification::UnknownDebt => {
                    problem("UNKNOWN_IUV", &l.flow_id, l.amount, &|| l.iuv.clone())
                }
                matching::Classification::FlowWithoutReceipt if expects_receipt => {
                    problem("PAYMENT_WITHOUT_RECEIPT", &l.flow_id, l.amount, &|| {
                        l.iuv.clone()
                    })
                }
                _ => {}
            }
            if let Some(expected) = l.transfer_amount
                && l.outcome != 3
                && expected != l.amount
            {
                problem("LINE_AMOUNT_MISMATCH", &l.flow_id, l.amount, &|| {
                    format!(
                        "{} (atteso {}, rendicontato {})",
                        l.iuv,
                        expected.to_italian(),
                        l.amount.to_italian()
                    )
                });
            }
        })
        .await?;
    // A payment reported again: every line after the oldest flow's.
    let mut previous: Option<(String, u8)> = None;
    for r in store.repeated_lines(ente).await? {
        let key = (r.iuv.clone(), r.transfer_index);
        if previous.as_ref() == Some(&key) {
            problem("DUPLICATE_PAYMENT", &r.flow_id, r.amount, &|| {
                format!("{} indice {}", r.iuv, r.transfer_index)
            });
        }
        previous = Some(key);
    }
    for ((code, flow_id), (shown, count, cents)) in grouped {
        let more = if count > shown.len() { ", …" } else { "" };
        let what = match code {
            "UNKNOWN_IUV" => "pagamenti di IUV sconosciuti",
            "PAYMENT_WITHOUT_RECEIPT" => "pagamenti senza ricevuta",
            "LINE_AMOUNT_MISMATCH" => "pagamenti di importo diverso dalla posizione",
            _ => "pagamenti già rendicontati in un altro flusso",
        };
        anomalies.push(AnomalyRecord {
            code: code.into(),
            subject: flow_id,
            detail: format!("{count} {what}: {}{more}", shown.join(", ")),
            amount: Some(Cents(cents)),
        });
    }
    // Outcomes 8 and 9: paid, and no receipt will ever come. The flow is
    // the proof of payment, so the option is paid by it (once: a paid
    // option is no longer listed).
    let paid: Vec<(String, DateTime<Utc>)> = store
        .options_paid_without_receipt(ente)
        .await?
        .into_iter()
        .map(|(nav, day)| {
            let at = incasso_core::time::from_rome(day.and_hms_opt(12, 0, 0).unwrap_or_default());
            (nav, at)
        })
        .collect();
    // One transaction for all: a year has thousands.
    let outcomes = store.mark_options_paid(ente, &paid, now).await?;
    for ((nav, _), outcome) in paid.into_iter().zip(outcomes) {
        if let Err(e) = outcome {
            anomalies.push(AnomalyRecord {
                code: "FLOW_PAYMENT_NOT_APPLIED".into(),
                subject: nav.clone(),
                detail: format!(
                    "il flusso riporta pagato senza ricevuta l'avviso {nav}, ma la posizione non lo accetta: {e}"
                ),
                amount: None,
            });
        }
    }
    // What the flows list was reported as each flow, and each payment
    // above, arrived (the store's `reporting`): nothing to redo here.
    // What a flow contradicts in itself: count, total, repeated lines.
    for f in flows.iter().filter(|f| !f.problems.is_empty()) {
        anomalies.push(AnomalyRecord {
            code: "FLOW_INCONSISTENT".into(),
            subject: f.flow_id.clone(),
            detail: f.problems.clone(),
            amount: Some(Cents(f.declared_total.0 - f.lines_total.0)),
        });
    }
    store.save_matching(ente, &records, &anomalies, now).await?;
    let mut by_code = BTreeMap::new();
    for a in &anomalies {
        *by_code.entry(a.code.clone()).or_insert(0) += 1;
    }
    Ok(Summary {
        flows: flows.len(),
        open_sospesi: result.matches.len() + ties.len(),
        matched,
        anomalies: by_code,
        lines_by_class,
    })
}

/// One flow line (a transfer of a payment) with the sources that know it
/// and the class that makes of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassifiedLine {
    pub flow_id: String,
    pub iuv: String,
    pub transfer_index: u8,
    pub amount: Cents,
    pub outcome: u8,
    pub position: bool,
    pub receipt: bool,
    /// A sospeso of the treasury is matched to the line's flow.
    pub treasury: bool,
    pub class: &'static str,
    /// The line's number in its flow, from 1.
    pub line: u32,
}

/// The lines of the Ente's current flows (or of one), each classified by
/// its four sources as the latest matching run left them, those of `class`
/// only if given, at most `limit`.
pub async fn classified_lines(
    store: &Store,
    ente: &str,
    flow_id: Option<&str>,
    class: Option<&str>,
    limit: usize,
) -> Result<Vec<ClassifiedLine>, ReconError> {
    classified_lines_after(store, ente, flow_id, class, None, limit).await
}

/// [`classified_lines`] by flow id and line, those after `after` (a flow
/// id and a line number) only: a page of them.
pub async fn classified_lines_after(
    store: &Store,
    ente: &str,
    flow_id: Option<&str>,
    class: Option<&str>,
    after: Option<(&str, u32)>,
    limit: usize,
) -> Result<Vec<ClassifiedLine>, ReconError> {
    known_ente(store, ente).await?;
    let mut paid: std::collections::HashSet<String> = store
        .movement_matches(ente)
        .await?
        .into_iter()
        .filter(|m| m.status == "MATCHED")
        .filter_map(|m| m.flow_id)
        .collect();
    paid.extend(
        store
            .manual_ties(ente)
            .await?
            .into_iter()
            .flat_map(|t| t.flow_ids),
    );
    let flows: Vec<String> = match flow_id {
        Some(f) => vec![f.to_string()],
        None => store
            .current_flows(ente)
            .await?
            .into_iter()
            .map(|f| f.flow_id)
            .collect(),
    };
    // The flows before the cursor's are skipped whole, by id.
    let flows: Vec<String> = match after {
        Some((from, _)) => flows.into_iter().filter(|f| f.as_str() >= from).collect(),
        None => flows,
    };
    let mut out = Vec::new();
    store
        .scan_line_facts(ente, &flows, |l| {
            if after.is_some_and(|(f, line)| l.flow_id == f && l.line <= line) {
                return true;
            }
            let treasury = paid.contains(&l.flow_id);
            let code = matching::classify(matching::Sources {
                position: l.has_option,
                receipt: l.has_receipt,
                flow: true,
                treasury,
            })
            .code();
            if class.is_none_or(|c| c == code) {
                out.push(ClassifiedLine {
                    flow_id: l.flow_id,
                    iuv: l.iuv,
                    transfer_index: l.transfer_index,
                    amount: l.amount,
                    outcome: l.outcome,
                    position: l.has_option,
                    receipt: l.has_receipt,
                    treasury,
                    class: code,
                    line: l.line,
                });
            }
            out.len() < limit
        })
        .await?;
    Ok(out)
}

/// What a breakdown is of.
#[derive(Debug, Clone, Copy)]
pub enum BreakdownOf<'a> {
    /// The current version of a flow.
    Flow(&'a str),
    /// A sospeso: the flow it was matched to.
    Movement(&'a str),
    /// One IUV, over every flow that reports it.
    Iuv(&'a str),
}

/// Amounts by accertamento (`None`: attributed to none), to the cent: the
/// parts add up to what the flow lines moved.
pub async fn breakdown(
    store: &Store,
    ente: &str,
    of: BreakdownOf<'_>,
) -> Result<incasso_recon::breakdown::Breakdown, ReconError> {
    use incasso_recon::breakdown::{self, Line};
    use incasso_store::LinesOf;
    // A sospeso's flows: the one a run matched it to, or those a clerk
    // tied it to.
    let flows_of_movement: Vec<String>;
    let lines_of: Vec<LinesOf<'_>> = match of {
        BreakdownOf::Flow(id) => vec![LinesOf::Flow(id)],
        BreakdownOf::Iuv(iuv) => vec![LinesOf::Iuv(iuv)],
        BreakdownOf::Movement(id) => {
            flows_of_movement = match store.manual_tie(ente, id).await? {
                Some(tie) => tie.flow_ids,
                None => vec![
                    store
                        .matched_flow_of(ente, id)
                        .await?
                        .ok_or(ReconError::NotMatched(id.to_string()))?,
                ],
            };
            flows_of_movement
                .iter()
                .map(|f| LinesOf::Flow(f.as_str()))
                .collect()
        }
    };
    let defaults = store.default_accertamenti(ente).await?;
    let mut accounted = Vec::new();
    for of in lines_of {
        accounted.extend(store.accounted_lines(ente, of).await?);
    }
    let lines: Vec<Line> = accounted
        .into_iter()
        .map(|l| Line {
            fallback: l.category.as_ref().and_then(|c| defaults.get(c).cloned()),
            iuv: l.iuv,
            transfer_index: l.transfer_index,
            amount: l.amount,
            quotas: l.quotas,
        })
        .collect();
    Ok(breakdown::breakdown(&lines))
}

/// What fetching an Ente's flows from the Node did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchReport {
    /// Flows the Node listed.
    pub listed: usize,
    /// Flows fetched and taken in (new or later versions).
    pub taken: usize,
    /// Listed flows already held.
    pub known: usize,
    /// Flows refused, with why: one bad flow never stops the others.
    pub refused: Vec<(String, String)>,
}

/// Fetches the Ente's reporting flows from the Node, through the first of
/// its stations that has a connection, and takes in those not yet held.
pub async fn fetch_flows(
    store: &Store,
    ente: &str,
    now: DateTime<Utc>,
) -> Result<FetchReport, ReconError> {
    known_ente(store, ente).await?;
    let node = node_of(store, ente)
        .await?
        .ok_or(ReconError::NoConnection)?;
    fetch_with(store, ente, node.as_ref(), now).await
}

/// The connector of the first of the Ente's stations that has a connection
/// to the Node; none if no station has one.
async fn node_of(
    store: &Store,
    ente: &str,
) -> Result<Option<Box<dyn incasso_pagopa::connector::NodeConnector>>, ReconError> {
    use incasso_pagopa::connector::{self, ConnectionSettings, StationIdentity};
    for station in store.list_stations(ente).await? {
        let Some(json) = store.station_connection(ente, &station.station_id).await? else {
            continue;
        };
        let settings: ConnectionSettings = serde_json::from_str(&json)
            .map_err(|e| ReconError::Node(format!("collegamento non leggibile: {e}")))?;
        let node = connector::build(
            &settings,
            StationIdentity {
                broker_id: station.broker_id.clone(),
                station_id: station.station_id.clone(),
            },
        )
        .map_err(|e| ReconError::Node(e.to_string()))?;
        return Ok(Some(node));
    }
    Ok(None)
}

async fn fetch_with(
    store: &Store,
    ente: &str,
    node: &dyn incasso_pagopa::connector::NodeConnector,
    now: DateTime<Utc>,
) -> Result<FetchReport, ReconError> {
    let listed = node
        .list_reporting_flows(ente)
        .await
        .map_err(|e| ReconError::Node(e.to_string()))?;
    // What is held: SOAP versions by dataOraFlusso (to the second, in
    // Rome's time, as the Node lists them), FdR 3 ones by revision.
    let mut held_versions = std::collections::HashSet::new();
    let mut held_revisions = std::collections::HashSet::new();
    for f in store.current_flows(ente).await? {
        if let Some(r) = f.revision {
            held_revisions.insert((f.flow_id.clone(), r as u64));
        }
        let rome = incasso_core::time::to_rome(f.flow_date_time);
        held_versions.insert((f.flow_id, rome.format("%Y-%m-%dT%H:%M:%S").to_string()));
    }
    let mut report = FetchReport {
        listed: listed.len(),
        ..Default::default()
    };
    let mut batch = Vec::new();
    for f in listed {
        let held = match f.revision {
            Some(r) => held_revisions.contains(&(f.flow_id.clone(), r)),
            // The Node may give fractions of seconds; the version is the
            // second.
            None => held_versions.contains(&(
                f.flow_id.clone(),
                f.flow_date_time
                    .get(..19)
                    .unwrap_or(&f.flow_date_time)
                    .to_string(),
            )),
        };
        if held {
            report.known += 1;
            continue;
        }
        match node.fetch_reporting_flow(ente, &f).await {
            Ok(fetched) => batch.push((f.flow_id, read_fetched(ente, fetched))),
            Err(e) => refuse(&mut report, f.flow_id, ReconError::Node(e.to_string())),
        }
        if batch.len() == FLOWS_PER_TRANSACTION {
            take_batch(store, ente, &mut batch, &mut report, now).await?;
        }
    }
    take_batch(store, ente, &mut batch, &mut report, now).await?;
    Ok(report)
}

/// Reads a flow as the Node gave it, through either interface.
fn read_fetched(
    ente: &str,
    fetched: incasso_pagopa::connector::FetchedFlow,
) -> Result<ReportingFlow, ReconError> {
    use incasso_pagopa::connector::FetchedFlow;
    match fetched {
        FetchedFlow::Xml(bytes) => parse_flows(ente, &[bytes]).remove(0),
        FetchedFlow::Fdr3 {
            header,
            payment_pages,
        } => {
            let flow = incasso_recon::fdr3::parse(&header, &payment_pages)?;
            if flow.ente != ente {
                return Err(ReconError::OtherEnte {
                    expected: ente.to_string(),
                    found: flow.ente,
                });
            }
            Ok(flow)
        }
    }
}

/// Flows fetched from the Node stored in one transaction: a commit per
/// flow was a third of the intake's time (`incasso bench recon`).
const FLOWS_PER_TRANSACTION: usize = 100;

fn refuse(report: &mut FetchReport, flow_id: String, e: ReconError) {
    tracing::warn!(flow = %flow_id, error = %e, "flusso rifiutato");
    report
        .refused
        .push((flow_id, format!("[{}] {e}", e.code())));
}

async fn take_batch(
    store: &Store,
    ente: &str,
    batch: &mut Vec<(String, Result<ReportingFlow, ReconError>)>,
    report: &mut FetchReport,
    now: DateTime<Utc>,
) -> Result<(), ReconError> {
    if batch.is_empty() {
        return Ok(());
    }
    let (ids, parsed): (Vec<String>, Vec<_>) = batch.drain(..).unzip();
    let answers = store_parsed_flows(store, ente, parsed, now).await?;
    for (flow_id, answer) in ids.into_iter().zip(answers) {
        match answer {
            Ok((_, FlowIntake::AlreadyKnown)) => report.known += 1,
            Ok(_) => report.taken += 1,
            Err(e) => refuse(report, flow_id, e),
        }
    }
    Ok(())
}

/// An accounting application's own reconciliation (GovPay's
/// `riconciliazioni`): it read a bank transfer and sends its causale,
/// amount and reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconciliationRequest {
    /// The application's id for it: the call is idempotent on it.
    pub id: String,
    pub causale: String,
    pub amount: Cents,
    pub trn: Option<String>,
    pub date: chrono::NaiveDate,
}

/// What the call found: the flow the transfer pays, and its breakdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconciliationAnswer {
    pub flow_id: String,
    pub breakdown: incasso_recon::breakdown::Breakdown,
}

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("nessun flusso corrisponde alla causale né al riferimento indicati")]
    NoFlow,
    #[error("l'importo {sent} non è quello del flusso {flow_id} ({expected})")]
    Amount {
        flow_id: String,
        sent: String,
        expected: String,
    },
    #[error("la riconciliazione {0} esiste già con altri dati")]
    Conflict(String),
    #[error(transparent)]
    Recon(#[from] ReconError),
}

impl RequestError {
    pub fn code(&self) -> &'static str {
        match self {
            RequestError::NoFlow => "FLOW_NOT_FOUND",
            RequestError::Amount { .. } => "AMOUNT_MISMATCH",
            RequestError::Conflict(_) => "RECONCILIATION_CONFLICT",
            RequestError::Recon(e) => e.code(),
        }
    }
}

/// Finds the flow the transfer pays, with an exact amount, and records the
/// transfer as the Ente's movement `API/<id>`: the same id again answers
/// the same, the same id with other data is refused.
pub async fn reconcile_request(
    store: &Store,
    ente: &str,
    r: &ReconciliationRequest,
    now: DateTime<Utc>,
) -> Result<ReconciliationAnswer, RequestError> {
    use incasso_core::treasury::{Direction, DocumentKind, Operation, TreasuryMovement};
    known_ente(store, ente).await?;
    let movement_id = format!("API/{}", r.id);
    if let Some(existing) = store
        .movement(ente, &movement_id)
        .await
        .map_err(ReconError::from)?
        && (existing.amount != r.amount || existing.causale != r.causale || existing.trn != r.trn)
    {
        return Err(RequestError::Conflict(r.id.clone()));
    }
    let flows = store.current_flows(ente).await.map_err(ReconError::from)?;
    // A flow a clerk tied to a sospeso by hand is paid: no transfer may
    // claim it again.
    let tied: std::collections::HashSet<String> = store
        .manual_ties(ente)
        .await
        .map_err(ReconError::from)?
        .into_iter()
        .flat_map(|t| t.flow_ids)
        .collect();
    let keys: Vec<FlowKey> = flow_keys(&flows)
        .into_iter()
        .filter(|k| !tied.contains(&k.flow_id))
        .collect();
    let movement = TreasuryMovement {
        movement_id: movement_id.clone(),
        ente: ente.to_string(),
        account: "API".into(),
        year: chrono::Datelike::year(&r.date),
        direction: Direction::Income,
        document: DocumentKind::ProvisionalIncome,
        operation: Operation::Executed,
        document_number: r.id.clone(),
        amount: r.amount,
        booking_date: r.date,
        value_date: None,
        payer: None,
        causale: r.causale.clone(),
        trn: r.trn.clone(),
        end_to_end_id: None,
    };
    let result = matching::match_all(&keys, std::slice::from_ref(&movement));
    let flow_id = match result.matches.first().map(|m| &m.outcome) {
        Some(Outcome::Flow { flow_id, .. }) => flow_id.clone(),
        Some(Outcome::AmountMismatch {
            flow_id,
            flow_amount,
        }) => {
            return Err(RequestError::Amount {
                flow_id: flow_id.clone(),
                sent: r.amount.to_italian(),
                expected: flow_amount.to_italian(),
            });
        }
        _ => return Err(RequestError::NoFlow),
    };
    store
        .store_movements(ente, &[movement], now)
        .await
        .map_err(ReconError::from)?;
    let breakdown = breakdown(store, ente, BreakdownOf::Flow(&flow_id)).await?;
    Ok(ReconciliationAnswer { flow_id, breakdown })
}

/// Fetches new flows from the Node for every Ente that has a station with
/// a connection, and reruns each one's matching when something came. One
/// Ente's failure never stops the others. The server runs it on a schedule.
pub async fn fetch_all(
    store: &Store,
    now: DateTime<Utc>,
) -> Vec<(String, Result<FetchReport, ReconError>)> {
    let enti = match store.list_enti().await {
        Ok(e) => e,
        Err(e) => return vec![(String::new(), Err(e.into()))],
    };
    let mut out = Vec::new();
    for ente in enti {
        let fc = ente.fiscal_code;
        let (store, ente) = (store.clone(), fc.clone());
        let work = async move {
            let node = match node_of(&store, &ente).await {
                Ok(Some(node)) => node,
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            };
            Some(match fetch_with(&store, &ente, node.as_ref(), now).await {
                Ok(report) if report.taken > 0 => {
                    reconcile(&store, &ente, now).await.map(|_| report)
                }
                other => other,
            })
        };
        match crate::jobs::isolated(&fc, "flow fetch", work).await {
            Some(None) => {}
            Some(Some(result)) => out.push((fc, result)),
            None => out.push((
                fc,
                Err(ReconError::Internal(
                    "l'acquisizione si è interrotta; la causa è nei log".into(),
                )),
            )),
        }
    }
    out
}

/// The Ente's treasury service settings, as OPI headers need them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TreasurySettings {
    /// The treasury bank's ABI code (5 digits).
    pub bank_abi: String,
    /// The Ente's IPA office code (6 characters, A-Z and digits).
    pub ipa_office_code: String,
    /// The Ente's SIOPE code (9 to 15 digits).
    pub siope_ente_code: String,
    /// `A2A-` and 8 digits: the Ente's and the bank's intermediaries.
    pub ente_channel: String,
    pub bank_channel: String,
    /// The bank's own code for the Ente.
    pub bank_ente_code: String,
}

impl TreasurySettings {
    fn header(
        &self,
        ente: &incasso_core::ente::Ente,
        flow_id: String,
        year: i32,
        now: DateTime<Utc>,
    ) -> incasso_recon::reversale::OrderHeader {
        incasso_recon::reversale::OrderHeader {
            bank_abi: self.bank_abi.clone(),
            flow_id,
            created_at: incasso_core::time::to_rome(now),
            ipa_office_code: self.ipa_office_code.clone(),
            ente_name: ente.name.clone(),
            siope_ente_code: self.siope_ente_code.clone(),
            ente_fiscal_code: ente.fiscal_code.clone(),
            ente_channel: self.ente_channel.clone(),
            bank_channel: self.bank_channel.clone(),
            bank_ente_code: self.bank_ente_code.clone(),
            year,
        }
    }
}

/// Stores the Ente's treasury settings once they pass the OPI header's
/// rules.
pub async fn put_treasury_settings(
    store: &Store,
    ente: &str,
    settings: &TreasurySettings,
    now: DateTime<Utc>,
) -> Result<(), ReconError> {
    let e = store.get_ente(ente).await?;
    incasso_recon::reversale::check_header(&settings.header(&e, "CHECK".into(), 2026, now))?;
    let json = serde_json::to_string(settings).unwrap_or_default();
    Ok(store.put_treasury_settings(ente, &json, now).await?)
}

/// The regularization proposal of a matched sospeso: an OPI flow with one
/// reversale, split over the accertamenti of the flow it was matched to.
pub async fn reversale_for(
    store: &Store,
    ente: &str,
    movement_id: &str,
    number: u32,
    now: DateTime<Utc>,
) -> Result<String, ReconError> {
    use incasso_recon::reversale::{self, BudgetPart, Regularization};
    let e = store.get_ente(ente).await?;
    let settings: TreasurySettings = store
        .treasury_settings(ente)
        .await?
        .and_then(|j| serde_json::from_str(&j).ok())
        .ok_or(ReconError::NoTreasurySettings)?;
    let movement = store
        .movement(ente, movement_id)
        .await?
        .ok_or_else(|| ReconError::UnknownMovement(movement_id.to_string()))?;
    let split = breakdown(store, ente, BreakdownOf::Movement(movement_id)).await?;
    if let Some(unattributed) = split.get(&None) {
        return Err(ReconError::Unattributed(*unattributed));
    }
    let mut parts = Vec::new();
    for (acc, cents) in split {
        let Some(acc) = acc else { continue };
        let a = store.get_accertamento(ente, acc.year, &acc.code).await?;
        parts.push(BudgetPart {
            accertamento: acc,
            chapter: a.chapter,
            article: a.article,
            description: a.description,
            siope_code: a.siope_code,
            amount: cents,
        });
    }
    let header = settings.header(
        &e,
        format!("REV-{}-{number:07}", movement.year),
        movement.year,
        now,
    );
    let order = Regularization {
        number,
        date: incasso_core::time::to_rome(now).date(),
        sospeso_number: movement.document_number.clone(),
        sospeso_amount: movement.amount,
        account: Some(movement.account.clone()),
        causale: format!(
            "REGOLARIZZAZIONE SOSPESO {} {}",
            movement.document_number, movement.causale
        )
        .chars()
        .take(140)
        .collect(),
        parts,
    };
    Ok(reversale::write(&header, &[order])?)
}

/// Every anomaly a run may record, with what it means and what to do, in
/// Italian for the clerk who reads the list: code, name, explanation.
pub const ANOMALY_CLASSES: &[(&str, &str, &str)] = &[
    (
        "MOVEMENT_WITHOUT_FLOW",
        "Sospeso senza flusso",
        "La tesoreria ha incassato un sospeso che non corrisponde a nessun flusso di rendicontazione né a un pagamento singolo noto. Può darsi che il flusso non sia ancora arrivato (si abbinerà alla prossima riconciliazione) o che la causale del bonifico non lo nomini: in tal caso si regolarizza a mano.",
    ),
    (
        "AMOUNT_MISMATCH",
        "Importo del sospeso diverso dal flusso",
        "La causale del sospeso nomina un flusso, ma l'importo riversato è diverso da quello che il flusso rendiconta. Spesso un PSP riversa più flussi con un solo bonifico: si regolarizza a mano scegliendo tutti i flussi che il sospeso paga.",
    ),
    (
        "FLOW_WITHOUT_MOVEMENT",
        "Flusso senza sospeso",
        "Il flusso di rendicontazione è arrivato ma nessun sospeso della tesoreria ne riversa i soldi. Di solito il riversamento arriva con il giornale di cassa dei giorni seguenti; se manca a lungo va chiesto al PSP.",
    ),
    (
        "DUPLICATE_MOVEMENT",
        "Più sospesi per lo stesso flusso",
        "Più sospesi riversano lo stesso flusso: uno solo lo paga, gli altri vanno verificati con la tesoreria (un bonifico ripetuto va restituito).",
    ),
    (
        "ACCOUNT_NOT_OF_ENTE",
        "Conto non dell'ente",
        "Il movimento è su un conto che non è tra quelli dell'ente (IBAN e IBAN postale): non si riconcilia. Verificare il conto nelle impostazioni dell'ente o il file della tesoreria.",
    ),
    (
        "UNKNOWN_IUV",
        "Pagamenti di IUV sconosciuti",
        "Il flusso rendiconta pagamenti di IUV che non corrispondono a nessuna posizione dell'ente: soldi incassati senza un debito noto, da attribuire o restituire.",
    ),
    (
        "PAYMENT_WITHOUT_RECEIPT",
        "Pagamenti senza ricevuta",
        "Il flusso rendiconta pagamenti eseguiti di cui l'ente non ha la ricevuta telematica: la ricevuta va richiesta al nodo dei pagamenti.",
    ),
    (
        "LINE_AMOUNT_MISMATCH",
        "Importo del pagamento diverso dalla posizione",
        "Il flusso rendiconta per un versamento un importo diverso da quello della posizione debitoria: la differenza va verificata con il PSP o con il debitore.",
    ),
    (
        "DUPLICATE_PAYMENT",
        "Pagamento già rendicontato",
        "Lo stesso versamento (IUV e indice) è rendicontato anche in un altro flusso: possibile doppio riversamento da verificare con il PSP.",
    ),
    (
        "FLOW_PAYMENT_NOT_APPLIED",
        "Pagamento del flusso non applicato",
        "Il flusso riporta pagato senza ricevuta (esiti 8 e 9) un avviso che la posizione non accetta come pagato, per esempio perché annullata: va verificato a mano.",
    ),
    (
        "FLOW_INCONSISTENT",
        "Flusso incoerente",
        "Il flusso contraddice sé stesso: il numero o il totale dei pagamenti dichiarati non corrisponde a quelli elencati, o un pagamento è ripetuto. Va segnalato al PSP.",
    ),
    (
        "MANUAL_TIE_MISMATCH",
        "Regolarizzazione manuale non più coerente",
        "Un sospeso regolarizzato a mano non è più coperto esattamente dai suoi flussi (un flusso è stato sostituito da una nuova versione con altri importi): annullare la regolarizzazione e rifarla.",
    ),
];

/// A line class's name and meaning, for the clerk: code, name,
/// explanation.
pub const LINE_CLASSES: &[(&str, &str, &str)] = &[
    (
        "RECONCILED",
        "Riconciliato",
        "Posizione, ricevuta, flusso e tesoreria concordano: i soldi sono arrivati e sono attribuiti.",
    ),
    (
        "AWAITING_TREASURY",
        "In attesa della tesoreria",
        "Pagato e rendicontato, ma nessun sospeso della tesoreria ne riversa ancora il flusso.",
    ),
    (
        "AWAITING_FLOW",
        "In attesa del flusso",
        "Pagato (c'è la ricevuta), ma nessun flusso di rendicontazione lo riporta ancora.",
    ),
    (
        "FLOW_WITHOUT_RECEIPT",
        "Rendicontato senza ricevuta",
        "Un flusso lo rendiconta ma l'ente non ha la ricevuta (normale per gli esiti 8 e 9, un'anomalia per gli altri).",
    ),
    (
        "UNKNOWN_DEBT",
        "Debito sconosciuto",
        "Una ricevuta o un flusso per qualcosa che l'ente non aveva a credito.",
    ),
    ("UNPAID", "Non pagato", "Dovuto, e non ancora pagato."),
];

/// A sospeso's tie by hand, as a clerk asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TieRequest<'a> {
    pub movement_id: &'a str,
    pub flow_ids: &'a [String],
    pub note: &'a str,
    /// Who asks, as the audit log names them.
    pub actor: &'a str,
}

/// Ties an open sospeso that matching could not place (no flow, or a
/// flow of another amount) to the flows it pays, then reruns the matching
/// so that the anomalies it settles go away. The flows must be the Ente's
/// current ones, paid by no other sospeso, and add up to the sospeso's
/// amount exactly; otherwise nothing is written.
pub async fn tie_manually(
    store: &Store,
    ente: &str,
    request: &TieRequest<'_>,
    now: DateTime<Utc>,
) -> Result<Summary, ReconError> {
    known_ente(store, ente).await?;
    let movement_id = request.movement_id;
    let row = store
        .movement_row(ente, movement_id)
        .await?
        .ok_or_else(|| ReconError::UnknownMovement(movement_id.to_string()))?;
    let not_tieable = |why: &str| ReconError::NotTieable {
        movement_id: movement_id.to_string(),
        why: why.to_string(),
    };
    match row.status.as_deref() {
        Some("UNMATCHED") | Some("AMOUNT_MISMATCH") => {}
        Some("MATCHED") => return Err(not_tieable("è già abbinato a un flusso")),
        Some(MANUAL) => return Err(not_tieable("è già regolarizzato a mano")),
        Some("SINGLE_PAYMENT") => {
            return Err(not_tieable(
                "è un pagamento singolo, non un riversamento di flussi",
            ));
        }
        _ => {
            return Err(not_tieable(
                "non è un sospeso aperto della riconciliazione (eseguire prima la riconciliazione)",
            ));
        }
    }
    // Each flow: the Ente's, current, and paid by no other sospeso.
    let taken: std::collections::HashMap<String, String> = store
        .movement_matches(ente)
        .await?
        .into_iter()
        .filter(|m| m.status == "MATCHED" && m.movement_id != movement_id)
        .filter_map(|m| Some((m.flow_id?, m.movement_id)))
        .chain(store.manual_ties(ente).await?.into_iter().flat_map(|t| {
            let id = t.movement_id;
            t.flow_ids.into_iter().map(move |f| (f, id.clone()))
        }))
        .collect();
    let mut flows = Vec::with_capacity(request.flow_ids.len());
    for flow_id in request.flow_ids {
        if let Some(other) = taken.get(flow_id) {
            return Err(ReconError::FlowTaken {
                flow_id: flow_id.clone(),
                movement_id: other.clone(),
            });
        }
        let flow = store
            .current_flow(ente, flow_id)
            .await?
            .ok_or_else(|| ReconError::UnknownFlow(flow_id.clone()))?;
        flows.push((flow_id.as_str(), flow.flow.lines_total));
    }
    incasso_recon::regularization::check_tie(row.movement.amount, &flows, request.note)?;
    let mut flow_ids = request.flow_ids.to_vec();
    flow_ids.sort();
    store
        .tie_manually(
            ente,
            &ManualTie {
                movement_id: movement_id.to_string(),
                flow_ids,
                note: request.note.trim().to_string(),
                actor: request.actor.to_string(),
                created_at: now,
            },
        )
        .await?;
    reconcile(store, ente, now).await
}

/// Undoes a sospeso's tie by hand, then reruns the matching, which places
/// the sospeso and its flows as it can.
pub async fn untie(
    store: &Store,
    ente: &str,
    movement_id: &str,
    now: DateTime<Utc>,
) -> Result<Summary, ReconError> {
    known_ente(store, ente).await?;
    if !store.untie(ente, movement_id).await? {
        return Err(ReconError::NotTied(movement_id.to_string()));
    }
    reconcile(store, ente, now).await
}
