//! `incasso bench recon`: a big Comune's year of reconciliation on SQLite or PostgreSQL.
//!
//! Generated: the year's receipts with their positions (one per flow
//! line, see [`seed_year`]; setup, not timed), `flows` reporting flows of
//! `lines` payments each (a year of daily flows from twenty PSPs), and one
//! sospeso per flow as treasuries write them: most with the exact causale,
//! some mangled inside the date or after the PSP's code, some with only the
//! TRN, a few with a wrong amount, a few missing, a few unknown. Timed:
//! taking in the flows (XML written, parsed and stored), storing the
//! sospesi, and the matching run, which classifies every line against its
//! position, receipt and sospeso.

use crate::bench::{ENTE, IBAN, peak_rss_mb, prepare, round2, tempdir};
use anyhow::Result;
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use incasso_core::Cents;
use incasso_core::fdr::{FlowOutcome, FlowPayment, PartyIdKind, ReportingFlow};
use incasso_core::treasury::{Direction, DocumentKind, Operation, TreasuryMovement};
use incasso_store::Store;
use serde_json::json;
use std::time::Instant;

fn flow_id(i: u64) -> String {
    let day = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + Duration::days((i % 365) as i64);
    format!("{day}PSPEITMM{:03}-S{:09}", i % 20, i)
}

/// The IUV of the year's `n`th payment, on the station's segregation code
/// 01. [`seed_year`] computes the same in SQL.
fn iuv(n: u64) -> String {
    let nav = incasso_core::codes::NoticeNumber::generate(1, n).expect("13 digits");
    nav.to_string()[1..].to_string()
}

fn flow(i: u64, lines: u64) -> ReportingFlow {
    let day = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + Duration::days((i % 365) as i64);
    let payments: Vec<FlowPayment> = (0..lines)
        .map(|j| FlowPayment {
            iuv: iuv(i * lines + j),
            // The IUR is the receipt's id (`seed_year` writes `R-<n>`).
            iur: format!("R-{}", i * lines + j),
            transfer_index: Some(1),
            amount: Cents(1_000 + ((i * 7 + j * 13) % 9_000) as i64),
            outcome: if (i * lines + j) % 1_000 == 999 {
                FlowOutcome::PaidWithoutReceipt
            } else {
                FlowOutcome::Paid
            },
            outcome_date: day,
        })
        .collect();
    ReportingFlow {
        flow_id: flow_id(i),
        flow_date_time: Utc.from_utc_datetime(&day.and_hms_opt(6, 0, 0).unwrap())
            + Duration::days(1),
        settlement_ref: format!("TRN{i:012}"),
        settlement_date: day,
        psp_id: format!("PSPEITMM{:03}", i % 20),
        psp_id_kind: PartyIdKind::Bic,
        psp_name: Some("PSP Esempio".into()),
        bic: None,
        ente: ENTE.into(),
        ente_name: None,
        declared_count: lines,
        declared_total: Cents(payments.iter().map(|p| p.amount.0).sum()),
        payments,
        revision: None,
    }
}

/// The sospeso of flow `i` as the treasury writes it, or none (missing).
fn sospeso(i: u64, f: &ReportingFlow) -> Option<TreasuryMovement> {
    let id = &f.flow_id;
    let (causale, trn, amount) = match i % 100 {
        4 => return None,
        3 => (
            format!("/PUR/LGPE-RIVERSAMENTO/URI/{id}"),
            None,
            f.declared_total.0 + 1,
        ),
        n if n % 20 == 0 => (
            format!("/PUR/LGPE- RIVERSAMENTO/URI/{} {}", &id[..8], &id[8..]),
            None,
            f.declared_total.0,
        ),
        n if n % 20 == 1 => (
            "ACCREDITO DA PSP".to_string(),
            Some(f.settlement_ref.clone()),
            f.declared_total.0,
        ),
        n if n % 20 == 2 => (
            format!(
                "BONIFICO /PUR/LGPE-RIVERSAMENTO/URI/{} {}",
                &id[..18],
                &id[18..]
            ),
            None,
            f.declared_total.0,
        ),
        _ => (
            format!("RIVERSAMENTO /PUR/LGPE-RIVERSAMENTO/URI/{id}"),
            None,
            f.declared_total.0,
        ),
    };
    Some(movement(i, causale, trn, amount, f.settlement_date))
}

fn movement(
    n: u64,
    causale: String,
    trn: Option<String>,
    cents: i64,
    day: NaiveDate,
) -> TreasuryMovement {
    TreasuryMovement {
        movement_id: format!("2026/0000001/{n:07}/ESEGUITO"),
        ente: ENTE.into(),
        account: "0000001".into(),
        year: 2026,
        direction: Direction::Income,
        document: DocumentKind::ProvisionalIncome,
        operation: Operation::Executed,
        document_number: format!("{n:07}"),
        amount: Cents(cents),
        booking_date: day + Duration::days(1),
        value_date: None,
        payer: Some("PSP Esempio".into()),
        causale,
        trn,
        end_to_end_id: None,
    }
}

/// How many flows a fetch from the Node takes in together.
const FLOWS_PER_FETCH: u64 = 100;

pub async fn run(flows: u64, lines: u64, database_url: Option<String>) -> Result<()> {
    let dir = tempdir()?;
    let url =
        database_url.unwrap_or_else(|| format!("sqlite://{}", dir.join("recon.db").display()));
    let store = Store::connect(&url).await?;
    let backend = store.dialect().name();
    prepare(&store).await?;
    let started = Instant::now();
    incasso_store::bench::seed_recon_year(&store, ENTE, IBAN, flows * lines, lines).await?;
    println!(
        "seeded {} receipts with their positions in {:.1} s (not timed)",
        flows * lines,
        started.elapsed().as_secs_f64()
    );
    let now = Utc::now();

    let mut movements = Vec::new();
    // Flows come in as the Node lists them, a batch per fetch. Reading a
    // batch's XML is CPU work and storing one is the SQLite writer's: the
    // next batch is written out and parsed on a blocking thread while the
    // store takes this one.
    let produce = move |from: u64| {
        let to = (from + FLOWS_PER_FETCH).min(flows);
        let mut sospesi = Vec::new();
        let files: Vec<String> = (from..to)
            .map(|i| {
                let f = flow(i, lines);
                sospesi.extend(sospeso(i, &f));
                if i % 500 == 5 {
                    let day = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
                    sospesi.push(movement(flows + i, "VERSAMENTO".into(), None, 4_242, day));
                }
                incasso_recon::fdr::write(&f)
            })
            .collect();
        (incasso_app::reconcile::parse_flows(ENTE, &files), sospesi)
    };
    let started = Instant::now();
    let mut next = Some(tokio::task::spawn_blocking(move || produce(0)));
    let mut from = 0;
    while let Some(batch) = next.take() {
        let (parsed, sospesi) = batch.await?;
        from += FLOWS_PER_FETCH;
        if from < flows {
            let at = from;
            next = Some(tokio::task::spawn_blocking(move || produce(at)));
        }
        movements.extend(sospesi);
        let answers = incasso_app::reconcile::store_parsed_flows(&store, ENTE, parsed, now)
            .await
            .map_err(|e| anyhow::anyhow!("[{}] {e}", e.code()))?;
        for answer in answers {
            answer.map_err(|e| anyhow::anyhow!("[{}] {e}", e.code()))?;
        }
    }
    let flow_time = started.elapsed();
    let started = Instant::now();
    for chunk in movements.chunks(5_000) {
        store.store_movements(ENTE, chunk, now).await?;
    }
    let treasury_time = started.elapsed();
    let started = Instant::now();
    let summary = incasso_app::reconcile::reconcile(&store, ENTE, now)
        .await
        .map_err(|e| anyhow::anyhow!("[{}] {e}", e.code()))?;
    let match_time = started.elapsed();
    let rss = peak_rss_mb();
    store.close().await;
    // INCASSO_BENCH_KEEP keeps the database, to look into with sqlite3.
    if std::env::var_os("INCASSO_BENCH_KEEP").is_some() {
        println!("database kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }

    let payments = flows * lines;
    let total = (flow_time + treasury_time + match_time).as_secs_f64();
    println!(
        "bench recon ({backend}): {flows} flows of {lines} payments, {} sospesi",
        movements.len()
    );
    println!("  {:<44} {:>10} {:>12}", "phase", "seconds", "per second");
    println!(
        "  {:<44} {:>10.2} {:>12.0}",
        "flows written, parsed and stored",
        flow_time.as_secs_f64(),
        payments as f64 / flow_time.as_secs_f64()
    );
    println!(
        "  {:<44} {:>10.2} {:>12.0}",
        "sospesi stored",
        treasury_time.as_secs_f64(),
        movements.len() as f64 / treasury_time.as_secs_f64()
    );
    println!(
        "  {:<44} {:>10.2} {:>12.0}",
        "matching run (sospesi)",
        match_time.as_secs_f64(),
        summary.open_sospesi as f64 / match_time.as_secs_f64()
    );
    println!(
        "  matched {} of {} open sospesi; peak RSS {rss:.0} MiB",
        summary.matched, summary.open_sospesi
    );
    println!("  lines by class {:?}", summary.lines_by_class);
    println!("  anomalies {:?}", summary.anomalies);
    anyhow::ensure!(
        summary.matched as u64 >= flows * 9 / 10 - 1,
        "too few matched: {} of {flows}",
        summary.matched
    );
    println!(
        "{}",
        json!({
            "bench": "recon",
            "backend": backend,
            "items": payments,
            "seconds": round2(total),
            "per_s": (payments as f64 / total).round(),
            "flows": flows,
            "sospesi": movements.len(),
            "flows_seconds": round2(flow_time.as_secs_f64()),
            "treasury_seconds": round2(treasury_time.as_secs_f64()),
            "match_seconds": round2(match_time.as_secs_f64()),
            "matched": summary.matched,
            "peak_rss_mb": rss.round(),
        })
    );
    Ok(())
}
