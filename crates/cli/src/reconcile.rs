//! `incasso reconcile`: take in reporting flows and treasury files, then
//! match the Ente's sospesi to its flows and print what was found.

use anyhow::{Context, Result};
use chrono::Utc;
use incasso_server::reconcile;
use incasso_store::{FlowIntake, Store};
use std::path::PathBuf;

pub async fn run(
    store: &Store,
    ente: &str,
    fetch: bool,
    flows: &[PathBuf],
    treasury: &[PathBuf],
    treasury_layout: Option<&str>,
) -> Result<()> {
    let now = Utc::now();
    let layout = match treasury_layout {
        Some(name) => Some(
            incasso_server::supply::resolve_layout(store, ente, name)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        ),
        None => None,
    };
    // Every file is tried; one refused file does not stop the others.
    let mut refused = 0;
    if fetch {
        let r = reconcile::fetch_flows(store, ente, now)
            .await
            .map_err(|e| anyhow::anyhow!("[{}] {e}", e.code()))?;
        println!(
            "nodo: {} flussi elencati, {} acquisiti, {} già presenti",
            r.listed, r.taken, r.known
        );
        for (flow, why) in &r.refused {
            refused += 1;
            eprintln!("flusso {flow}: rifiutato {why}");
        }
    }
    for path in flows {
        let bytes =
            std::fs::read(path).with_context(|| format!("lettura di {}", path.display()))?;
        match reconcile::take_flow(store, ente, &bytes, now).await {
            Ok(intake) => println!(
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
                eprintln!("flusso {}: rifiutato [{}] {e}", path.display(), e.code());
            }
        }
    }
    for path in treasury {
        let bytes =
            std::fs::read(path).with_context(|| format!("lettura di {}", path.display()))?;
        let taken = match &layout {
            Some(l) => reconcile::take_treasury_with_layout(store, ente, l, bytes, now).await,
            None => reconcile::take_treasury_file(store, ente, &bytes, now).await,
        };
        match taken {
            Ok(new) => println!("tesoreria {}: {new} movimenti nuovi", path.display()),
            Err(e) => {
                refused += 1;
                eprintln!("tesoreria {}: rifiutato [{}] {e}", path.display(), e.code());
            }
        }
    }
    let summary = reconcile::reconcile(store, ente, now)
        .await
        .map_err(|e| anyhow::anyhow!("[{}] {e}", e.code()))?;
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
