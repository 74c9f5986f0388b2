//! incasso with Ente A and Ente B connected to the simulated pagoPA
//! (Checkout, the Node and its PSP), and e-mail going through the
//! simulator's SMTP server: the world of the receipt tests.
//!
//! Include after `common/app.rs` (as `app`) with
//! `#[path = "common/portal_receipts_world.rs"] mod world;`.

use super::app::gpd::{self, BROKER, ENTE, IBAN, OTHER_ENTE};
use chrono::{Duration, Utc};
use incasso_core::Cents;
use incasso_core::sample::{self, PositionSpec};
use incasso_pagopa::connector::{Auth, ConnectionSettings};
use incasso_simulator::{Faults, ReceivedMail, Route, Settings, Simulator};
use incasso_store::Store;
use incasso_testkit::Backend;

const KEY: &str = "portal-receipts-subscription-key";

pub struct World {
    pub app: incasso_app::App,
    pub store: Store,
    pub base: String,
    pub sim: Simulator,
    pub sim_url: String,
    pub http: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// A published notice and its debtor.
pub struct Notice {
    pub nav: String,
    pub iuv: String,
    pub debtor_name: String,
    pub debtor_fc: String,
}

pub async fn world(backend: Backend) -> World {
    incasso_pagopa::connector::install_crypto_provider();
    let (store, _keys) = gpd::enti(backend, &[ENTE, OTHER_ENTE]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
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
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim_url = format!("http://{}", sim_listener.local_addr().unwrap());
    tokio::spawn(sim.clone().serve(sim_listener, std::future::pending()));
    let smtp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let smtp_url = format!("smtp://{}", smtp.local_addr().unwrap());
    tokio::spawn(sim.clone().serve_smtp(smtp));
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
        store
            .set_station_connection(
                ente,
                station,
                Some(&serde_json::to_string(&connection).unwrap()),
            )
            .await
            .unwrap();
    }
    let mut settings = incasso_app::Settings::new(&base);
    settings.smtp_url = Some(smtp_url);
    settings.mail_from = Some("Pagamenti <pagamenti@comune.example.it>".into());
    let app = incasso_app::App::new(store.clone(), settings);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(incasso_server::serve(listener, app.clone(), async {
        let _ = stopped.await;
    }));
    World {
        app,
        store,
        base,
        sim,
        sim_url,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        _stop: stop,
    }
}

impl World {
    /// A published notice of `ente` for `amount` cents.
    pub async fn notice(&self, ente: &str, iupd: &str, amount: i64) -> Notice {
        let now = Utc::now();
        let p = sample::position(&PositionSpec {
            ente,
            company_name: "Comune di prova",
            iupd: iupd.into(),
            debtor_index: 11 + iupd.len() as u64,
            amount: Cents(amount),
            description: format!("TARI 2026 {iupd}"),
            category: "9/0101101IM/",
            iban: IBAN,
            due_date: now + Duration::days(20),
            installments: 0,
            second_beneficiary: None,
            quotas: vec![],
        });
        let stored = self
            .store
            .create_position(ente, p, now, true)
            .await
            .unwrap();
        let p = stored.position;
        let nav = p.options[0]
            .notice_number
            .clone()
            .unwrap()
            .as_str()
            .to_string();
        Notice {
            iuv: nav[1..].to_string(),
            nav,
            debtor_name: p.debtor.full_name.clone(),
            debtor_fc: p.debtor.fiscal_code.clone(),
        }
    }

    /// The messages the SMTP server took, as `GET /simulator/mail` lists
    /// them.
    pub async fn mail(&self) -> Vec<serde_json::Value> {
        self.http
            .get(format!("{}/simulator/mail", self.sim_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits (up to 20 s) for a message to `to`.
    pub async fn mail_to(&self, to: &str) -> ReceivedMail {
        for _ in 0..200 {
            if let Some(m) = self.sim.mail().into_iter().find(|m| m.to == [to]) {
                return m;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("no message to {to}: {:?}", self.sim.mail());
    }

    /// Waits (up to 20 s) until the outbox row of `key` satisfies `done`.
    pub async fn outbox_until(
        &self,
        key: &str,
        done: impl Fn(&incasso_store::mail::MailRecord) -> bool,
    ) -> incasso_store::mail::MailRecord {
        let mut last = None;
        for _ in 0..200 {
            last = self.store.mail_by_key(key).await.unwrap();
            if let Some(m) = &last
                && done(m)
            {
                return m.clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("outbox row {key} never reached the state: {last:?}");
    }

    /// The receipt id of the notice's (only) receipt.
    pub async fn receipt_id(&self, ente: &str, nav: &str) -> String {
        for _ in 0..100 {
            let list = self
                .store
                .list_receipts(ente, false, None, 1000)
                .await
                .unwrap();
            if let Some(r) = list.iter().find(|r| r.notice_number == nav) {
                return r.receipt_id.clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("no receipt for {nav}");
    }
}
