//! incasso with Ente A and Ente B, each station connected to the
//! simulated pagoPA (Checkout and the Node), and notices made to order:
//! the world of the portal's payment tests.
//!
//! Include after `common/app.rs` (as `app`) with
//! `#[path = "common/pay_world.rs"] mod pay_world;`.

use super::app::gpd::{BROKER, ENTE, IBAN, OTHER_ENTE};
use super::app::{TestApp, spawn_app};
use chrono::{Duration, Utc};
use incasso_core::Cents;
use incasso_core::sample::{self, PositionSpec};
use incasso_pagopa::connector::{Auth, ConnectionSettings};
use incasso_simulator::{Faults, Route, Settings, Simulator};
use incasso_testkit::Backend;

const KEY: &str = "portal-pay-subscription-key";

pub struct World {
    pub app: TestApp,
    pub sim: Simulator,
    pub sim_url: String,
    http: reqwest::Client,
}

pub async fn world(backend: Backend) -> World {
    incasso_pagopa::connector::install_crypto_provider();
    let app = spawn_app(backend).await;
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
        ente_soap_url: format!("{}/pagopa/paForNode", app.server.base),
        routes,
        required_subscription_key: Some(KEY.into()),
        faults: Faults::default(),
        public_url: None,
        oidc: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(sim.clone().serve(listener, std::future::pending()));
    for (ente, station) in [(ENTE, "ST_01"), (OTHER_ENTE, "ST_02")] {
        let connection = ConnectionSettings {
            rest_url: Some(sim_url.clone()),
            soap_url: Some(format!("{sim_url}/nodo/nodeForPa")),
            auth: Auth::SubscriptionKey { key: KEY.into() },
            timeout_ms: 2_000,
            retries: 1,
            backoff_ms: 10,
            ..Default::default()
        };
        app.store
            .set_station_connection(
                ente,
                station,
                Some(&serde_json::to_string(&connection).unwrap()),
            )
            .await
            .unwrap();
    }
    World {
        app,
        sim,
        sim_url,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    }
}

/// A notice of what a position made with these looks like.
pub struct Notice {
    pub nav: String,
    pub iupd: String,
    pub debtor_name: String,
    pub debtor_fc: String,
}

impl World {
    pub fn base(&self) -> &str {
        &self.app.server.base
    }

    /// A published notice of `ente` for `amount`, due in `due_days` (in
    /// the past: made a month ago, and expiring).
    pub async fn notice(&self, ente: &str, iupd: &str, amount: i64, due_days: i64) -> Notice {
        let now = Utc::now();
        let mut p = sample::position(&PositionSpec {
            ente,
            company_name: if ente == ENTE {
                "Comune di Prova"
            } else {
                "Comune di Altrove"
            },
            iupd: iupd.into(),
            debtor_index: 7 + iupd.len() as u64,
            amount: Cents(amount),
            description: format!("TARI 2026 {iupd}"),
            category: "9/0101101IM/",
            iban: IBAN,
            due_date: now + Duration::days(due_days),
            installments: 0,
            second_beneficiary: None,
            quotas: vec![],
        });
        p.switch_to_expired = true;
        let made_at = if due_days < 0 {
            now - Duration::days(30)
        } else {
            now
        };
        let stored = self
            .app
            .store
            .create_position(ente, p, made_at, true)
            .await
            .unwrap();
        let p = stored.position;
        Notice {
            nav: p.options[0]
                .notice_number
                .clone()
                .unwrap()
                .as_str()
                .to_string(),
            iupd: iupd.into(),
            debtor_name: p.debtor.full_name.clone(),
            debtor_fc: p.debtor.fiscal_code.clone(),
        }
    }

    pub async fn carts(&self) -> Vec<serde_json::Value> {
        self.http
            .get(format!("{}/simulator/carts", self.sim_url))
            .send()
            .await
            .unwrap()
            .json::<Vec<serde_json::Value>>()
            .await
            .unwrap()
    }

    /// Presses a button on the simulated Checkout page; the redirect.
    pub async fn checkout(&self, location: &str, button: &str) -> reqwest::Response {
        self.http
            .post(format!("{location}/{button}"))
            .send()
            .await
            .unwrap()
    }
}

impl World {
    pub fn app_ctx(&self) -> incasso_app::Ctx {
        self.app_with(incasso_app::Caller::System("test"))
    }

    pub fn public_ctx(&self) -> incasso_app::Ctx {
        self.app_with(incasso_app::Caller::Public)
    }

    fn app_with(&self, caller: incasso_app::Caller) -> incasso_app::Ctx {
        incasso_app::App::new(
            self.app.store.clone(),
            incasso_app::Settings::new(self.base()),
        )
        .ctx(caller)
    }
}
