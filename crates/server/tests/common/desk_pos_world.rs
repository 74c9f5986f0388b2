//! The Sportello Digitale with its card terminal (issue 18): Enti A and B
//! (`app::gpd::enti`), incasso served with a POS gateway, and the
//! simulated POS gateway, terminal, acquirer and Node on a port of their
//! own; the desk catalogue of `desk_world` at Ente A, desk SPORTELLO_01
//! with terminal SIMPOS01 on it.

use super::app;
use super::desk_world::{DESK, catalogue};
pub use app::gpd::ENTE;
use app::gpd::{BROKER, OTHER_ENTE};
use incasso_app::App;
use incasso_app::pos::{self, PosSettings};
use incasso_pagopa::pos::PosGatewaySettings;
use incasso_simulator::pos::{PosConfig, acquirer};
use incasso_simulator::{Faults, Route, Settings, Simulator};
use incasso_store::Store;
use incasso_testkit::Backend;

/// The subscription key the simulated POS gateway and Node require.
pub const KEY: &str = "pos-gateway-subscription-key";

pub struct DeskPosWorld {
    pub store: Store,
    pub app: App,
    /// incasso's address.
    pub base: String,
    pub sim: Simulator,
    pub sim_url: String,
    /// The GPD API keys of the Enti, in the order of `enti`.
    pub keys: Vec<String>,
    /// incasso stops when this is dropped.
    _stop: tokio::sync::oneshot::Sender<()>,
}

pub async fn desk_pos_world(backend: Backend) -> DeskPosWorld {
    incasso_pagopa::connector::install_crypto_provider();
    let (store, keys) = app::gpd::enti(backend, &[ENTE, OTHER_ENTE]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim_url = format!("http://{}", sim_listener.local_addr().unwrap());
    let routes = [ENTE, OTHER_ENTE]
        .iter()
        .enumerate()
        .map(|(i, fc)| Route {
            fiscal_code: fc.to_string(),
            broker_id: BROKER.into(),
            station_id: format!("ST_{:02}", i + 1),
            segregation_code: Some(i as u8 + 1),
        })
        .collect();
    let sim = Simulator::new(Settings {
        ente_soap_url: format!("{base}/pagopa/paForNode"),
        routes,
        required_subscription_key: Some(KEY.into()),
        faults: Faults::default(),
        public_url: None,
        oidc: Default::default(),
    });
    sim.configure_pos(PosConfig {
        callback_url: base.clone(),
        authorization_timeout_ms: 2_000,
        default_delay_ms: 50,
        receipt_delay_ms: 200,
        callback_retry_ms: 100,
        callback_attempts: 20,
        gpd_url: base.clone(),
        gpd_keys: [(ENTE.to_string(), keys[0].clone())].into(),
        ..PosConfig::default()
    });
    tokio::spawn(sim.clone().serve(sim_listener, std::future::pending()));
    let psp = acquirer();
    let mut pos_settings = PosSettings::http(PosGatewaySettings {
        url: format!("{sim_url}/pos-layer-service"),
        subscription_key: Some(KEY.into()),
        psp: incasso_pagopa::pos::PspInfo {
            id: psp.id.clone(),
            broker: psp.id.clone(),
            channel: psp.channel.clone(),
        },
        timeout_ms: 5_000,
    })
    .unwrap();
    pos_settings.outcome_deadline = chrono::Duration::seconds(30);
    let mut settings = incasso_app::Settings::new(&base);
    settings.pos = Some(pos_settings);
    let app = App::new(store.clone(), settings);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(incasso_server::serve(listener, app.clone(), async {
        let _ = stopped.await;
    }));
    catalogue(&store, ENTE).await;
    store
        .create_desk(&incasso_store::desks::DeskRecord {
            ente: ENTE.into(),
            code: DESK.into(),
            name: "Sportello polifunzionale".into(),
            office: None,
            created_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    pos::register_terminal(
        &app.system("test"),
        ENTE,
        "SIMPOS01",
        "POS dello sportello",
        Some(DESK),
    )
    .await
    .unwrap();
    DeskPosWorld {
        store,
        app,
        base,
        sim,
        sim_url,
        keys,
        _stop: stop,
    }
}
