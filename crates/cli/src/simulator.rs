//! `incasso simulator`: the pagoPA Node, PSP and Checkout simulator, as a
//! server of its own or to pay one notice from the command line.

use anyhow::{Context, Result, anyhow};
use clap::Subcommand;
use incasso_simulator::{
    Faults, OidcClient, OidcSettings, Route, Settings, Simulator, TestIdentity,
};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum Command {
    /// Run the simulator (Checkout carts and pages, nodeForPa, the SPID/CIE
    /// identity proxy with demo.json's test identities).
    Serve {
        #[arg(long, default_value = "127.0.0.1:8090")]
        bind: String,
        /// demo.json of the incasso to talk to (routes and URL).
        #[arg(long, default_value = "./incasso-data/demo.json")]
        demo_json: PathBuf,
        /// incasso's base URL, if not the one in demo.json.
        #[arg(long)]
        incasso_url: Option<String>,
        /// Where its SMTP server (which keeps every message, listed at
        /// GET /simulator/mail) listens; point incasso's --smtp-url at it.
        #[arg(long, default_value = "127.0.0.1:2525")]
        smtp_bind: String,
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

/// The back office as a client of the simulator's SPID/CIE provider, as
/// demo.json registers it.
pub fn demo_spid(demo: &serde_json::Value) -> Option<incasso_app::spid::SpidSettings> {
    let field = |k: &str| {
        demo[k]
            .as_str()
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    Some(incasso_app::spid::SpidSettings {
        issuer: field("spid_issuer")?,
        client_id: field("spid_client_id")?,
        client_secret: field("spid_client_secret")?,
    })
}

/// The simulator's SPID/CIE provider: demo.json's test identities, and
/// incasso's back office and citizen portal as its client.
fn oidc_from_demo(demo: &serde_json::Value, base: &str) -> OidcSettings {
    let identities = demo["test_identities"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|i| serde_json::from_value::<TestIdentity>(i.clone()).ok())
                .filter(|i| !i.fiscal_code.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let clients = demo_spid(demo)
        .map(|s| OidcClient {
            client_id: s.client_id,
            client_secret: s.client_secret,
            // The back office's, and the one the citizen portals of every
            // Ente share.
            redirect_uris: ["/backoffice/spid/callback", "/portale/spid/callback"]
                .iter()
                .map(|path| format!("{}{path}", base.trim_end_matches('/')))
                .collect(),
            name: "incasso: back office e portale dei pagamenti".into(),
        })
        .into_iter()
        .collect();
    OidcSettings {
        identities,
        clients,
    }
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
            oidc: oidc_from_demo(&demo, &base),
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
            smtp_bind,
        } => {
            let (settings, _) = settings_from_demo(&demo_json, incasso_url)?;
            let listener = tokio::net::TcpListener::bind(&bind)
                .await
                .with_context(|| format!("binding {bind}"))?;
            tracing::info!(addr = %listener.local_addr()?, "simulator listening");
            let sim = Simulator::new(settings);
            // The SMTP server is an extra: a port already taken leaves the
            // rest of the simulator running, without it.
            let sink = match tokio::net::TcpListener::bind(&smtp_bind).await {
                Ok(smtp) => {
                    tracing::info!(smtp = %smtp.local_addr()?, "simulator's SMTP server listening");
                    Some(tokio::spawn(sim.clone().serve_smtp(smtp)))
                }
                Err(e) => {
                    tracing::warn!(bind = %smtp_bind, error = %e, "simulator's SMTP server not started");
                    None
                }
            };
            let served = sim
                .serve(listener, crate::shutdown_signal())
                .await
                .context("serving");
            if let Some(sink) = sink {
                sink.abort();
            }
            served
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
            // The PSP that collected is the one that reports: the running
            // simulator (serve --demo's) lists the payment in its next flow.
            if let Some(url) = demo["simulator_url"].as_str().filter(|u| !u.is_empty()) {
                let told = reqwest::Client::new()
                    .post(format!("{}/simulator/payments", url.trim_end_matches('/')))
                    .json(&payment)
                    .send()
                    .await
                    .map(|r| r.status().is_success());
                if !matches!(told, Ok(true)) {
                    eprintln!(
                        "avviso: il simulatore in esecuzione ({url}) non ha registrato il pagamento: i suoi flussi di rendicontazione non lo riporteranno"
                    );
                }
            }
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
