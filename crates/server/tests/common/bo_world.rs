//! Two Enti with a year in small, for the back office's tests that walk
//! every page: offices, a service, an accertamento, positions in two
//! offices, some paid through the simulated Node, their reporting flows
//! fetched from the simulated PSP, and the simulated treasury's journal
//! taken in and reconciled. What belongs to each Ente is listed, so a test
//! can tell whether a page shows another Ente's (or another office's) data.
//!
//! Include after `common/app.rs` (as `app`) with
//! `#[path = "common/bo_world.rs"] mod bo_world;`.

use super::app::gpd::{BROKER, ENTE, IBAN, OTHER_ENTE};
use super::app::{TestApp, spawn_app};
use chrono::{Duration, Utc};
use incasso_core::Cents;
use incasso_core::accertamento::{Accertamento, AccertamentoRef};
use incasso_core::catalogue::Service;
use incasso_core::ente::Office;
use incasso_core::sample::{self, PositionSpec};
use incasso_pagopa::connector::{Auth, ConnectionSettings};
use incasso_simulator::{Faults, Route, Settings, Simulator, TreasuryFormat};
use incasso_testkit::Backend;

const KEY: &str = "bo-world-subscription-key";
/// The offices of each Ente: positions are split between them.
pub const OFFICES: [&str; 2] = ["UT", "UR"];

/// What one Ente has, as the pages would show it.
#[derive(Debug, Default, Clone)]
pub struct Holdings {
    pub ente: String,
    /// By office code: the iupds of its positions.
    pub iupds_by_office: Vec<(String, Vec<String>)>,
    pub notice_numbers: Vec<String>,
    pub debtors: Vec<String>,
    /// The iupds of the positions paid (the first of each office).
    pub paid: Vec<String>,
    pub flow_ids: Vec<String>,
}

impl Holdings {
    pub fn iupds(&self) -> Vec<String> {
        self.iupds_by_office
            .iter()
            .flat_map(|(_, v)| v.clone())
            .collect()
    }

    pub fn iupds_of(&self, office: &str) -> Vec<String> {
        self.iupds_by_office
            .iter()
            .filter(|(o, _)| o == office)
            .flat_map(|(_, v)| v.clone())
            .collect()
    }

    /// Strings that appear only on a page that shows this Ente's data.
    pub fn markers(&self) -> Vec<String> {
        let mut m = self.iupds();
        m.extend(self.notice_numbers.iter().cloned());
        m.extend(self.debtors.iter().cloned());
        m.extend(self.flow_ids.iter().cloned());
        m
    }
}

pub struct World {
    pub app: TestApp,
    pub sim: Simulator,
    pub a: Holdings,
    pub b: Holdings,
}

/// incasso with Ente A and Ente B, each with its year in small.
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
    let a = year(&app, &sim, &sim_url, ENTE, "ST_01", 0).await;
    let b = year(&app, &sim, &sim_url, OTHER_ENTE, "ST_02", 1).await;
    World { app, sim, a, b }
}

async fn year(
    app: &TestApp,
    sim: &Simulator,
    sim_url: &str,
    ente: &str,
    station: &str,
    nth: u64,
) -> Holdings {
    let store = &app.store;
    let now = Utc::now();
    connect_station(store, ente, station, sim_url, KEY).await;
    for (code, name) in OFFICES
        .iter()
        .zip(["Ufficio Tributi", "Ufficio Ragioneria"])
    {
        store
            .put_office(
                ente,
                &Office {
                    code: code.to_string(),
                    name: name.into(),
                    email: None,
                },
            )
            .await
            .unwrap();
    }
    let acc = AccertamentoRef {
        year: 2026,
        code: "ACC-TARI".into(),
    };
    store
        .put_accertamento(
            ente,
            &Accertamento {
                year: acc.year,
                code: acc.code.clone(),
                description: "TARI 2026".into(),
                chapter: "1010".into(),
                article: None,
                siope_code: None,
                active: true,
            },
        )
        .await
        .unwrap();
    store
        .put_service(
            ente,
            &Service {
                code: "TARI".into(),
                name: "Tassa sui rifiuti".into(),
                office_code: Some("UT".into()),
                taxonomy_code: "9/0101101IM/".into(),
                default_accertamento: Some(acc.clone()),
                iban: None,
                fixed_amount: None,
                spontaneous: false,
                pagopa_service_id: None,
                active: true,
            },
        )
        .await
        .unwrap();
    let letter = if nth == 0 { "A" } else { "B" };
    let mut h = Holdings {
        ente: ente.into(),
        ..Default::default()
    };
    for (o, office) in OFFICES.iter().enumerate() {
        let mut iupds = Vec::new();
        for k in 0..2u64 {
            let debtor_index = 1000 * (nth + 1) + 10 * o as u64 + k;
            let iupd = format!("BO{letter}-{office}-{k}");
            let mut p = sample::position(&PositionSpec {
                ente,
                company_name: "Comune di prova",
                iupd: iupd.clone(),
                debtor_index,
                amount: Cents(12_345 + 100 * k as i64),
                description: format!("TARI 2026 {office} {k}"),
                category: "9/0101101IM/",
                iban: IBAN,
                due_date: now + Duration::days(30 + k as i64),
                installments: 0,
                second_beneficiary: None,
                quotas: vec![(acc.clone(), 100)],
            });
            p.office_name = Some(office.to_string());
            h.debtors.push(p.debtor.fiscal_code.clone());
            let stored = store.create_position(ente, p, now, true).await.unwrap();
            let nav = stored.position.options[0]
                .notice_number
                .clone()
                .unwrap()
                .as_str()
                .to_string();
            if k == 0 {
                sim.pay(ente, &nav).await.unwrap();
                h.paid.push(iupd.clone());
            }
            h.notice_numbers.push(nav);
            iupds.push(iupd);
        }
        h.iupds_by_office.push((office.to_string(), iupds));
    }
    for flow in report_and_reconcile(store, sim, ente, now).await {
        h.flow_ids.push(flow.flow_id);
    }
    h
}

/// Points `ente`'s `station` at the simulated Node at `sim_url` (REST for
/// FdR 3, SOAP for the rest), as an intermediary sets it in the back office.
pub async fn connect_station(
    store: &incasso_store::Store,
    ente: &str,
    station: &str,
    sim_url: &str,
    key: &str,
) {
    let connection = ConnectionSettings {
        rest_url: Some(sim_url.into()),
        soap_url: Some(format!("{sim_url}/nodo/nodeForPa")),
        auth: Auth::SubscriptionKey { key: key.into() },
        timeout_ms: 2_000,
        retries: 2,
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

/// What happens after payments, the way the product does it: the PSPs
/// publish their reporting flows on the simulated Node, incasso fetches
/// them (the flow-fetch job's use case, which also reconciles), the
/// treasury's OPI journal of `ente` is taken in and reconciliation runs.
/// Answers the flows published (of every Ente).
pub async fn report_and_reconcile(
    store: &incasso_store::Store,
    sim: &Simulator,
    ente: &str,
    now: chrono::DateTime<Utc>,
) -> Vec<incasso_simulator::PublishedFlow> {
    let published = sim.publish_flows();
    let fetched = incasso_app::reconcile::fetch_all(store, now).await;
    assert!(
        fetched.iter().all(|(_, r)| r.is_ok()),
        "fetching flows: {fetched:?}"
    );
    let journal = sim.treasury_statement(ente, &TreasuryFormat::Opi);
    incasso_app::reconcile::take_treasury_file(store, ente, journal.as_bytes(), now)
        .await
        .unwrap();
    incasso_app::reconcile::reconcile(store, ente, now)
        .await
        .unwrap();
    published
}
