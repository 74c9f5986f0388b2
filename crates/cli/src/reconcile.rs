//! `incasso reconcile`: take in reporting flows and treasury files, then
//! match the Ente's sospesi to its flows and print what was found.

use anyhow::{Context, Result, anyhow};
use incasso_app::{AppError, Ctx, digitfin};
use incasso_store::FlowIntake;
use std::path::PathBuf;

/// What to take in before matching.
pub struct Inputs<'a> {
    /// Fetch the Ente's new flows from the pagoPA Node first.
    pub fetch: bool,
    pub flows: &'a [PathBuf],
    pub treasury: &'a [PathBuf],
    /// Read the treasury files through this Digit BUS layout.
    pub treasury_layout: Option<&'a str>,
}

fn said(e: &AppError) -> String {
    format!("[{}] {}", e.code, e.detail)
}

pub async fn run(ctx: &Ctx, ente: &str, inputs: Inputs<'_>) -> Result<()> {
    if let Some(name) = inputs.treasury_layout {
        incasso_app::bus::layout(ctx, ente, name)
            .await
            .map_err(|e| anyhow!(said(&e)))?;
    }
    // Every file is tried; one refused file does not stop the others.
    let mut refused = 0;
    if inputs.fetch {
        let r = digitfin::fetch(ctx, ente)
            .await
            .map_err(|e| anyhow!(said(&e)))?;
        println!(
            "nodo: {} flussi elencati, {} acquisiti, {} già presenti",
            r.listed, r.taken, r.known
        );
        for (flow, why) in &r.refused {
            refused += 1;
            eprintln!("flusso {flow}: rifiutato {why}");
        }
    }
    for path in inputs.flows {
        let bytes =
            std::fs::read(path).with_context(|| format!("lettura di {}", path.display()))?;
        match digitfin::take_flow(ctx, ente, &bytes).await {
            Ok((_, intake)) => println!(
                "flusso {}: {}",
                path.display(),
                match intake {
                    FlowIntake::Stored => "acquisito",
                    FlowIntake::Replaced => "acquisito, sostituisce la versione precedente",
                    FlowIntake::AlreadyKnown => "già acquisito, nessuna modifica",
                    FlowIntake::Outdated =>
                        "versione precedente a quella già acquisita: conservato, non usato",
                }
            ),
            Err(e) => {
                refused += 1;
                eprintln!("flusso {}: rifiutato {}", path.display(), said(&e));
            }
        }
    }
    for path in inputs.treasury {
        let bytes =
            std::fs::read(path).with_context(|| format!("lettura di {}", path.display()))?;
        match digitfin::take_treasury(ctx, ente, inputs.treasury_layout, bytes).await {
            Ok(new) => println!("tesoreria {}: {new} movimenti nuovi", path.display()),
            Err(e) => {
                refused += 1;
                eprintln!("tesoreria {}: rifiutato {}", path.display(), said(&e));
            }
        }
    }
    let summary = digitfin::run(ctx, ente)
        .await
        .map_err(|e| anyhow!(said(&e)))?;
    println!(
        "riconciliazione: {} flussi, {} sospesi aperti, {} abbinati",
        summary.flows, summary.open_sospesi, summary.matched
    );
    for (class, n) in &summary.lines_by_class {
        println!("  pagamenti {class}: {n}");
    }
    for (code, n) in &summary.anomalies {
        println!("  anomalia {code}: {n}");
    }
    anyhow::ensure!(refused == 0, "{refused} file rifiutati");
    Ok(())
}
