//! `incasso simulator`: the pagoPA Node, PSP and Checkout simulator, as a
//! server of its own or to pay one notice from the command line.

use anyhow::{Context, Result, anyhow};
use clap::Subcommand;
use incasso_simulator::{Faults, Route, Settings, Simulator};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum Command {
    /// Run the simulator (Checkout carts and pages, nodeForPa).
    Serve {
        #[arg(long, default_value = "127.0.0.1:8090")]
        bind: String,
        /// demo.json of the incasso to talk to (routes and URL).
        #[arg(long, default_value = "./incasso-data/demo.json")]
        demo_json: PathBuf,
        /// incasso's base URL, if not the one in demo.json.
        #[arg(long)]
        incasso_url: Option<String>,
    },
    /// Pay one notice as a PSP would: verify, getPaymentV2, sendRTV2.
    Pay {
        /// The 18-digit notice number.
        #[arg(long)]
        notice: String,
        /// The Ente's fiscal code (default: the demo Ente that owns the notice).
        #[arg(long)]
        ente: Option<String>,
        #[arg(long, default_value = "./incasso-data/demo.json")]
        demo_json: PathBuf,
        #[arg(long)]
        incasso_url: Option<String>,
        /// Send the receipt twice (incasso must refuse the second).
        #[arg(long)]
        duplicate_receipt: bool,
        /// Charge twice: two different receipts (incasso flags the second).
        #[arg(long)]
        pay_twice: bool,
        /// Wait this long before sending the receipt.
        #[arg(long, default_value_t = 0)]
        late_receipt_ms: u64,
    },
}

/// Routes and incasso's URL, from a demo.json.
pub fn settings_from_demo(
    path: &Path,
    incasso_url: Option<String>,
) -> Result<(Settings, serde_json::Value)> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading {} (start `incasso serve --demo` first, or pass --demo-json)",
            path.display()
        )
    })?;
    let demo: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let base = incasso_url
        .or_else(|| demo["base_url"].as_str().map(str::to_string))
        .ok_or_else(|| anyhow!("no incasso URL: pass --incasso-url"))?;
    let broker = demo["broker_id"].as_str().unwrap_or_default().to_string();
    let routes = demo["enti"]
        .as_array()
        .map(|enti| {
            enti.iter()
                .map(|e| Route {
                    fiscal_code: e["fiscal_code"].as_str().unwrap_or_default().into(),
                    broker_id: broker.clone(),
                    station_id: e["station_id"].as_str().unwrap_or_default().into(),
                    segregation_code: e["segregation_code"].as_str().and_then(|s| s.parse().ok()),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok((
        Settings {
            ente_soap_url: format!("{}/pagopa/paForNode", base.trim_end_matches('/')),
            routes,
            required_subscription_key: demo["simulator_subscription_key"]
                .as_str()
                .map(str::to_string),
            faults: Faults::default(),
            public_url: None,
        },
        demo,
    ))
}

pub async fn run(command: Command) -> Result<()> {
    match command {
        Command::Serve {
            bind,
            demo_json,
            incasso_url,
        } => {
            let (settings, _) = settings_from_demo(&demo_json, incasso_url)?;
            let listener = tokio::net::TcpListener::bind(&bind)
                .await
                .with_context(|| format!("binding {bind}"))?;
            tracing::info!(addr = %listener.local_addr()?, "simulator listening");
            Simulator::new(settings)
                .serve(listener, crate::shutdown_signal())
                .await
                .context("serving")
        }
        Command::Pay {
            notice,
            ente,
            demo_json,
            incasso_url,
            duplicate_receipt,
            pay_twice,
            late_receipt_ms,
        } => {
            let (settings, demo) = settings_from_demo(&demo_json, incasso_url)?;
            let ente = match ente {
                Some(e) => e,
                None => owner_of(&demo, &notice)
                    .ok_or_else(|| anyhow!("which Ente owns {notice}? pass --ente"))?,
            };
            let sim = Simulator::new(Settings {
                faults: Faults {
                    duplicate_receipt,
                    pay_twice,
                    late_receipt_ms,
                    ..Faults::default()
                },
                ..settings
            });
            let payment = sim.pay(&ente, &notice).await.map_err(|e| anyhow!("{e}"))?;
            println!("{}", serde_json::to_string_pretty(&payment)?);
            Ok(())
        }
    }
}

/// The demo Ente whose payable notices, or else whose segregation code,
/// match the notice number.
fn owner_of(demo: &serde_json::Value, nav: &str) -> Option<String> {
    let enti = demo["enti"].as_array()?;
    enti.iter()
        .find(|e| {
            e["payable_notices"]
                .as_array()
                .is_some_and(|n| n.iter().any(|n| n["notice_number"] == nav))
        })
        .or_else(|| {
            enti.iter().find(|e| {
                e["segregation_code"]
                    .as_str()
                    .is_some_and(|s| nav.get(1..3) == Some(s))
            })
        })
        .and_then(|e| e["fiscal_code"].as_str().map(str::to_string))
}
