//! `serve --demo`'s card terminals: incasso pointed at the simulator's POS
//! gateway, and the simulator's terminals registered at the demo Enti
//! (the first on the first Ente's desk, so a clerk can take a payment on
//! it at once).

use anyhow::{Context, Result};
use incasso_app::App;
use incasso_app::demo::{DEMO_DESK, DEMO_TERMINALS};
use incasso_pagopa::pos::{PosGatewaySettings, PspInfo};

/// `app` with the POS gateway of the simulator at `sim_url` (whose
/// subscription key is `key`), and the simulator's terminals registered
/// as demo.json lists them ([`DEMO_TERMINALS`]): `SIMPOS01` on the first
/// Ente's desk, `SIMPOS08` (unavailable) beside it, `SIMPOS02` at the
/// second Ente.
pub async fn demo(
    app: &App,
    sim: &incasso_simulator::Simulator,
    sim_url: &str,
    key: Option<String>,
    demo_json: &serde_json::Value,
) -> Result<App> {
    // Positions made at the terminal are created through incasso's GPD
    // API with each Ente's demo key, as pagoPA creates them in GPD.
    let gpd_keys = demo_json["enti"]
        .as_array()
        .map(|enti| {
            enti.iter()
                .filter_map(|e| {
                    Some((
                        e["fiscal_code"].as_str()?.to_string(),
                        e["api_key"].as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    sim.configure_pos(incasso_simulator::pos::PosConfig {
        callback_url: app.settings.public_url.clone(),
        gpd_url: app.settings.public_url.clone(),
        gpd_keys,
        ..Default::default()
    });
    let acquirer = incasso_simulator::pos::acquirer();
    let gateway = PosGatewaySettings {
        url: format!("{}/pos-layer-service", sim_url.trim_end_matches('/')),
        subscription_key: key,
        psp: PspInfo {
            id: acquirer.id.clone(),
            broker: acquirer.id.clone(),
            channel: acquirer.channel.clone(),
        },
        timeout_ms: 10_000,
    };
    let mut settings = (*app.settings).clone();
    settings.pos =
        Some(incasso_app::pos::PosSettings::http(gateway).context("the demo's POS gateway")?);
    let app = App::new(app.store.clone(), settings);
    let ctx = app.system("demo");
    let enti: Vec<&str> = demo_json["enti"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["fiscal_code"].as_str()).collect())
        .unwrap_or_default();
    for (index, terminal, description, on_desk) in DEMO_TERMINALS {
        let Some(ente) = enti.get(index) else {
            continue;
        };
        let desk = on_desk.then_some(DEMO_DESK);
        let registered =
            incasso_app::pos::register_terminal(&ctx, ente, terminal, description, desk).await;
        if let Err(e) = registered {
            // Without its desk (none seeded), the terminal is still listed.
            tracing::warn!(terminal, error = %e, "demo terminal not put on its desk");
            incasso_app::pos::register_terminal(&ctx, ente, terminal, description, None)
                .await
                .with_context(|| format!("registering the demo terminal {terminal}"))?;
        }
    }
    Ok(app)
}
