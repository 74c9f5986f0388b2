//! incasso and the simulator together, each only through its real
//! interfaces: a citizen pays through Checkout; the connector's
//! authentication, retries and timeouts; the simulator's failure modes.

use chrono::{Duration, Utc};
use incasso_core::Cents;
use incasso_core::ente::{Ente, StationLink};
use incasso_core::position::PositionStatus;
use incasso_core::sample::{self, PositionSpec};
use incasso_pagopa::connector::{self, Auth, ConnectionSettings, StationIdentity};
use incasso_simulator::{Faults, Route, Settings, Simulator};
use incasso_store::Store;
use incasso_testkit::{Backend, backends, fresh_database_url};

const A: &str = "80000130585";
const BROKER: &str = "15376371009";
const STATION: &str = "15376371009_01";
const IBAN: &str = "IT65B0200805364000104567891";
const KEY: &str = "sim-subscription-key";

struct World {
    incasso: String,
    simulator: String,
    sim: Simulator,
    store: Store,
    http: reqwest::Client,
    /// The intermediary's key: the station's connection is set through
    /// the API, as an operator sets it (and as incasso then uses it at
    /// once, its cache of connections told).
    intermediary_key: String,
}

async fn world(backend: Backend) -> World {
    incasso_pagopa::connector::install_crypto_provider();
    let store = Store::connect(&fresh_database_url(backend).await)
        .await
        .unwrap();
    let now = Utc::now();
    store
        .create_ente(
            &Ente {
                fiscal_code: A.into(),
                name: "Comune di prova".into(),
                ipa_code: None,
                iban: Some(IBAN.into()),
                postal_iban: None,
                cbill_code: None,
                email: None,
            },
            now,
        )
        .await
        .unwrap();
    store
        .add_station(
            A,
            &StationLink {
                broker_id: BROKER.into(),
                station_id: STATION.into(),
                segregation_code: 1,
            },
            now,
        )
        .await
        .unwrap();
    let incasso_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let incasso = format!("http://{}", incasso_listener.local_addr().unwrap());
    tokio::spawn(incasso_server::serve_with_listener(
        incasso_listener,
        store.clone(),
        std::future::pending(),
    ));
    let sim = Simulator::new(Settings {
        ente_soap_url: format!("{incasso}/pagopa/paForNode"),
        routes: vec![Route {
            fiscal_code: A.into(),
            broker_id: BROKER.into(),
            station_id: STATION.into(),
            segregation_code: Some(1),
        }],
        required_subscription_key: Some(KEY.into()),
        faults: Faults::default(),
        public_url: None,
        oidc: Default::default(),
    });
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let simulator = format!("http://{}", sim_listener.local_addr().unwrap());
    tokio::spawn(sim.clone().serve(sim_listener, std::future::pending()));
    let (_, intermediary_key) =
        incasso_app::keys::issue_key(&store, None, incasso_store::KeyScope::Intermediary, "e2e")
            .await
            .unwrap();
    let w = World {
        intermediary_key,
        incasso,
        simulator,
        sim,
        store,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    };
    w.connect(settings(
        &w.simulator,
        Auth::SubscriptionKey { key: KEY.into() },
    ))
    .await;
    w
}

fn settings(simulator: &str, auth: Auth) -> ConnectionSettings {
    ConnectionSettings {
        rest_url: Some(simulator.into()),
        soap_url: Some(format!("{simulator}/nodo/nodeForPa")),
        auth,
        timeout_ms: 2_000,
        retries: 3,
        backoff_ms: 10,
        ..Default::default()
    }
}

impl World {
    async fn connect(&self, s: ConnectionSettings) {
        let resp = self
            .http
            .put(format!(
                "{}/api/v1/enti/{A}/stations/{STATION}/connection",
                self.incasso
            ))
            .header("Ocp-Apim-Subscription-Key", &self.intermediary_key)
            .json(&serde_json::json!({ "settings": s }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    }

    async fn notice(&self, iupd: &str) -> String {
        let p = sample::position(&PositionSpec {
            ente: A,
            company_name: "Comune di prova",
            iupd: iupd.into(),
            debtor_index: 9,
            amount: Cents(4_200),
            description: "Refezione scolastica".into(),
            category: "9/0101101IM/",
            iban: IBAN,
            due_date: Utc::now() + Duration::days(20),
            installments: 0,
            second_beneficiary: None,
            quotas: vec![],
        });
        let stored = self
            .store
            .create_position(A, p, Utc::now(), true)
            .await
            .unwrap();
        stored.position.options[0]
            .notice_number
            .clone()
            .unwrap()
            .as_str()
            .to_string()
    }

    /// An API key of Ente A, as its management application holds one.
    async fn key(&self) -> String {
        incasso_app::keys::issue_key(&self.store, Some(A), incasso_store::KeyScope::Ente, "test")
            .await
            .unwrap()
            .1
    }

    /// `GET path` on incasso with `key`: the status, the next page's
    /// cursor if any, and the body as JSON.
    async fn get(&self, path: &str, key: &str) -> (u16, Option<String>, serde_json::Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.incasso))
            .header("Ocp-Apim-Subscription-Key", key)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let next = resp
            .headers()
            .get("x-next-cursor")
            .map(|v| v.to_str().unwrap().to_string());
        (status, next, resp.json().await.unwrap())
    }

    /// Every item of a paged list at `path`, `limit` at a time, following
    /// each page's cursor; no page is longer than `limit`.
    async fn all_pages(&self, path: &str, limit: usize, key: &str) -> Vec<serde_json::Value> {
        let mut items = Vec::new();
        let mut url = format!("{path}?limit={limit}");
        loop {
            let (status, next, page) = self.get(&url, key).await;
            assert_eq!(status, 200, "{url}: {page}");
            let page = page.as_array().unwrap().clone();
            assert!(page.len() <= limit, "{url}");
            items.extend(page);
            match next {
                Some(c) => url = format!("{path}?limit={limit}&cursor={c}"),
                None => return items,
            }
        }
    }

    /// Presses *Paga* on the notice's pay page (a GET only shows it).
    async fn open(&self, nav: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/pay/{A}/{nav}", self.incasso))
            .send()
            .await
            .unwrap()
    }

    async fn status(&self, iupd: &str) -> PositionStatus {
        self.store
            .get_position(A, iupd)
            .await
            .unwrap()
            .position
            .status
    }
}

#[tokio::test]
async fn a_citizen_pays_through_the_checkout_page() {
    for backend in backends() {
        let w = world(backend).await;
        let nav = w.notice("CHK-1").await;
        let resp = w.open(&nav).await;
        assert_eq!(resp.status(), 303, "{backend:?}");
        let checkout = resp.headers()["location"].to_str().unwrap().to_string();
        assert!(checkout.starts_with(&w.simulator), "{checkout}");
        // The page shows the amount the Ente confirms (verify) and the buttons.
        let page = w
            .http
            .get(&checkout)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("42,00 €"), "{page}");
        assert!(page.contains("id=\"pay\"") && page.contains("id=\"cancel\""));
        // The person clicks "Paga".
        let resp = w.http.post(format!("{checkout}/pay")).send().await.unwrap();
        assert_eq!(resp.status(), 303);
        let back = resp.headers()["location"].to_str().unwrap().to_string();
        assert!(
            back.starts_with(&format!("{}/pay/{A}/{nav}/esito?outcome=ok", w.incasso)),
            "{back}"
        );
        let outcome = w
            .http
            .get(&back)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(outcome.contains("data-status=\"PAID\""), "{outcome}");
        assert_eq!(w.status("CHK-1").await, PositionStatus::Paid);
        let receipts = w.store.list_receipts(A, false, None, 10).await.unwrap();
        assert_eq!(receipts.len(), 1);
        assert_eq!(receipts[0].psp_id, w.sim.node().psp.id);
        // Paying again is refused before reaching Checkout.
        let resp = w.open(&nav).await;
        assert_eq!(resp.status(), 409);

        // Cancel: back to incasso, nothing paid.
        let nav2 = w.notice("CHK-2").await;
        let checkout = w.open(&nav2).await.headers()["location"]
            .to_str()
            .unwrap()
            .to_string();
        let resp = w
            .http
            .post(format!("{checkout}/cancel"))
            .send()
            .await
            .unwrap();
        assert!(
            resp.headers()["location"]
                .to_str()
                .unwrap()
                .ends_with("outcome=cancel")
        );
        assert_eq!(w.status("CHK-2").await, PositionStatus::Valid);
    }
}

#[tokio::test]
async fn connector_authenticates_retries_and_times_out() {
    for backend in backends() {
        connector_authenticates_retries_and_times_out_on(backend).await;
    }
}

async fn connector_authenticates_retries_and_times_out_on(backend: Backend) {
    // Shown with a failure, which otherwise would not say which database.
    eprintln!("connector_authenticates_retries_and_times_out on {backend:?}");
    let w = world(backend).await;
    let nav = w.notice("CONN-1").await;
    // Wrong key: Checkout refuses, the citizen gets a clear 502, not a hang.
    w.connect(settings(
        &w.simulator,
        Auth::SubscriptionKey {
            key: "wrong".into(),
        },
    ))
    .await;
    assert_eq!(w.open(&nav).await.status(), 502);
    w.connect(settings(&w.simulator, Auth::None)).await;
    assert_eq!(w.open(&nav).await.status(), 502);
    // Right key, but the Node fails twice: retries get through.
    w.connect(settings(
        &w.simulator,
        Auth::SubscriptionKey { key: KEY.into() },
    ))
    .await;
    w.sim.set_faults(Faults {
        fail_next: 2,
        ..Faults::default()
    });
    assert_eq!(w.open(&nav).await.status(), 303);
    // Pressed again: the open cart is reused, the Node is not asked.
    w.sim.set_faults(Faults {
        fail_next: 10,
        ..Faults::default()
    });
    assert_eq!(w.open(&nav).await.status(), 303);
    // Failing more times than the retries: 502 (another notice: no cart).
    let nav = w.notice("CONN-2").await;
    let resp = w.open(&nav).await;
    assert_eq!(resp.status(), 502);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("pagoPA non è raggiungibile")
    );
    // A Node slower than the station's timeout.
    let mut slow = settings(&w.simulator, Auth::SubscriptionKey { key: KEY.into() });
    slow.timeout_ms = 200;
    slow.retries = 1;
    w.connect(slow).await;
    w.sim.set_faults(Faults {
        slow_ms: 1_000,
        ..Faults::default()
    });
    let started = std::time::Instant::now();
    assert_eq!(w.open(&nav).await.status(), 502);
    assert!(
        started.elapsed() < std::time::Duration::from_millis(2_500),
        "timeouts bound the wait"
    );
    w.sim.set_faults(Faults::default());

    // The SOAP transport: nodoChiediElencoFlussiRendicontazione through the connector.
    let c = connector::build(
        &settings(
            &w.simulator,
            Auth::Basic {
                username: "u".into(),
                password: "p".into(),
            },
        ),
        StationIdentity {
            broker_id: BROKER.into(),
            station_id: STATION.into(),
        },
    )
    .unwrap();
    assert_eq!(c.id(), "pagopa");
    assert!(c.list_reporting_flows(A).await.unwrap().is_empty());

    // Client certificates: a valid PEM pair is accepted, a broken one refused at configuration time.
    let cert = include_str!("data/station-cert.pem").to_string();
    let key = include_str!("data/station-key.pem").to_string();
    let ok = settings(
        &w.simulator,
        Auth::ClientCertificate {
            certificate_pem: cert.clone(),
            key_pem: key,
        },
    );
    assert!(
        connector::build(
            &ok,
            StationIdentity {
                broker_id: BROKER.into(),
                station_id: STATION.into()
            }
        )
        .is_ok()
    );
    let broken = settings(
        &w.simulator,
        Auth::ClientCertificate {
            certificate_pem: cert,
            key_pem: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into(),
        },
    );
    assert!(
        connector::build(
            &broken,
            StationIdentity {
                broker_id: BROKER.into(),
                station_id: STATION.into()
            }
        )
        .is_err()
    );
    // Secrets never come back out.
    let shown = serde_json::to_string(&ok.redacted()).unwrap();
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
}

#[tokio::test]
async fn simulator_failure_modes_never_lose_or_double_count() {
    for backend in backends() {
        let w = world(backend).await;
        // Duplicate receipt: stored once, the second refused.
        let nav = w.notice("F-DUP").await;
        w.sim.set_faults(Faults {
            duplicate_receipt: true,
            ..Faults::default()
        });
        let p = w.sim.pay(A, &nav).await.unwrap();
        assert_eq!(p.receipt_ids.len(), 1);
        assert_eq!(w.status("F-DUP").await, PositionStatus::Paid);
        // A PSP paying twice: both receipts stored, the second flagged for refund.
        let nav = w.notice("F-TWICE").await;
        w.sim.set_faults(Faults {
            pay_twice: true,
            ..Faults::default()
        });
        let p = w.sim.pay(A, &nav).await.unwrap();
        assert_eq!(p.receipt_ids.len(), 2);
        let flagged = w.store.list_receipts(A, true, None, 10).await.unwrap();
        assert_eq!(flagged.len(), 1, "{backend:?}");
        assert_eq!(flagged[0].anomaly.as_deref(), Some("DOUBLE_PAYMENT"));
        assert_eq!(flagged[0].receipt_id, p.receipt_ids[1]);
        // The back office sees it through the API, and the receipt as sent.
        let key = w.key().await;
        let (_, _, listed) = w
            .get(&format!("/api/v1/enti/{A}/receipts?anomalies=true"), &key)
            .await;
        assert_eq!(listed[0]["anomaly"], "DOUBLE_PAYMENT", "{listed}");
        assert_eq!(listed[0]["refundStatus"], "TO_REFUND");
        let xml = w
            .http
            .get(format!(
                "{}/api/v1/enti/{A}/receipts/{}/xml",
                w.incasso, p.receipt_ids[1]
            ))
            .header("Ocp-Apim-Subscription-Key", &key)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            xml.contains("paSendRTV2Request") && xml.contains(&p.receipt_ids[1]),
            "{xml}"
        );
        // A late receipt still pays.
        let nav = w.notice("F-LATE").await;
        w.sim.set_faults(Faults {
            late_receipt_ms: 300,
            ..Faults::default()
        });
        w.sim.pay(A, &nav).await.unwrap();
        assert_eq!(w.status("F-LATE").await, PositionStatus::Paid);
        // Paying a paid notice is refused by verify: no receipt is sent.
        w.sim.set_faults(Faults::default());
        let err = w.sim.pay(A, &nav).await.unwrap_err();
        assert_eq!(err.fault_code(), Some("PAA_PAGAMENTO_DUPLICATO"));
        assert_eq!(
            w.store
                .list_receipts(A, false, None, 50)
                .await
                .unwrap()
                .len(),
            4
        );
        // Faults are switched through the simulator's API too.
        let faults: Faults = reqwest::Client::new()
            .put(format!("{}/simulator/faults", w.simulator))
            .json(&Faults {
                pay_twice: true,
                ..Faults::default()
            })
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(faults.pay_twice && w.sim.faults().pay_twice);
    }
}

/// Payments made through the simulated Node come back as the PSP's
/// reporting flow: published by the simulator, fetched by incasso through
/// the station's connector (SOAP nodeForPa, or FdR 3's REST API), taken in
/// once, and classified against the receipts incasso holds.
#[tokio::test]
async fn flows_of_simulated_payments_are_fetched_from_the_node() {
    use incasso_pagopa::connector::ReportingInterface;
    for (backend, interface) in backends().into_iter().flat_map(|b| {
        [ReportingInterface::Soap, ReportingInterface::Fdr3]
            .into_iter()
            .map(move |i| (b, i))
    }) {
        let w = world(backend).await;
        w.connect(ConnectionSettings {
            reporting: interface,
            // Pages of two: the three payments come over two pages.
            fdr3_page_size: 2,
            ..settings(&w.simulator, Auth::SubscriptionKey { key: KEY.into() })
        })
        .await;
        for k in 0..3 {
            let nav = w.notice(&format!("FDR-{k}")).await;
            w.sim.pay(A, &nav).await.unwrap();
        }
        let published = w.sim.publish_flows();
        assert_eq!(
            published.len(),
            1,
            "{backend:?}: one PSP, one Ente, one day"
        );
        assert_eq!(published[0].payments, 3);
        assert_eq!(published[0].total_cents, 3 * 4_200);
        let (_, key) =
            incasso_app::keys::issue_key(&w.store, Some(A), incasso_store::KeyScope::Ente, "test")
                .await
                .unwrap();
        let fetch = || async {
            w.http
                .post(format!("{}/api/v1/enti/{A}/flows/fetch", w.incasso))
                .header("Ocp-Apim-Subscription-Key", &key)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        };
        let first = fetch().await;
        assert_eq!(first["listed"], 1, "{first}");
        assert_eq!(first["taken"], 1, "{first}");
        // Again: nothing new is taken.
        let again = fetch().await;
        assert_eq!(again["known"], 1, "{again}");
        assert_eq!(again["taken"], 0);
        let flows = w.store.current_flows(A).await.unwrap();
        assert_eq!(flows[0].flow_id, published[0].flow_id);
        assert_eq!(flows[0].lines, 3);
        assert_eq!(flows[0].lines_total, Cents(3 * 4_200), "{interface:?}");
        assert_eq!(flows[0].settlement_ref, published[0].settlement_ref);
        assert!(flows[0].problems.is_empty(), "{}", flows[0].problems);
        assert_eq!(
            flows[0].revision,
            (interface == ReportingInterface::Fdr3).then_some(1)
        );
        if interface == ReportingInterface::Soap {
            // The station moves to FdR 3: the flow held from SOAP is known
            // there too, and from then on by its revision.
            w.connect(ConnectionSettings {
                reporting: ReportingInterface::Fdr3,
                ..settings(&w.simulator, Auth::SubscriptionKey { key: KEY.into() })
            })
            .await;
            let moved = fetch().await;
            assert_eq!(
                (moved["known"].as_u64(), moved["taken"].as_u64()),
                (Some(1), Some(0)),
                "{moved}"
            );
            let held = w.store.current_flows(A).await.unwrap();
            assert_eq!(held[0].revision, Some(1), "{backend:?}");
        }
        let s = incasso_app::reconcile::reconcile(&w.store, A, Utc::now())
            .await
            .unwrap();
        // Position, receipt and flow agree; the treasury has not spoken yet.
        assert_eq!(
            s.lines_by_class.get("AWAITING_TREASURY"),
            Some(&3),
            "{backend:?}: {s:?}"
        );
        assert_eq!(s.anomalies.get("FLOW_WITHOUT_MOVEMENT"), Some(&1));
        assert_eq!(s.anomalies.len(), 1, "{interface:?}: {s:?}");
        // A Node that is down is a 502 with its code, not a hang.
        w.sim.set_faults(Faults {
            fail_next: 10,
            ..Faults::default()
        });
        let r = w
            .http
            .post(format!("{}/api/v1/enti/{A}/flows/fetch", w.incasso))
            .header("Ocp-Apim-Subscription-Key", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 502);
        w.sim.set_faults(Faults::default());
    }
}

/// A year in small: twenty flows from the simulated Node, and the simulated
/// treasury's journals with every quirk banks have (mangled causali, TRN
/// only, a wrong amount, a missing and a late transfer). incasso fetches,
/// takes in and matches them; the late transfers match a journal later.
#[tokio::test]
async fn the_simulated_flows_and_journals_reconcile() {
    use incasso_simulator::{TreasuryFormat, TreasuryQuirk};
    let formats = [
        TreasuryFormat::Opi,
        TreasuryFormat::Camt053 { iban: IBAN.into() },
    ];
    for (backend, format) in backends()
        .into_iter()
        .flat_map(|b| formats.iter().map(move |f| (b, f)))
    {
        let w = world(backend).await;
        for n in 0..20 {
            for k in 0..2 {
                let nav = w.notice(&format!("Y-{n}-{k}")).await;
                w.sim.pay(A, &nav).await.unwrap();
            }
            assert_eq!(w.sim.publish_flows().len(), 1);
        }
        let now = Utc::now();
        // What the server's schedule runs: every connected Ente's new flows.
        let all = incasso_app::reconcile::fetch_all(&w.store, now).await;
        assert_eq!(all.len(), 1, "{backend:?}");
        let fetched = all[0].1.as_ref().unwrap();
        assert_eq!(all[0].0, A);
        assert_eq!((fetched.listed, fetched.taken), (20, 20), "{backend:?}");
        // The flows' payments are reported: GPD shows REPORTED, PO_REPORTED
        // and T_REPORTED with a reporting date (issue 14: never reached).
        let key = w.key().await;
        let (_, _, position) = w
            .get(
                &format!("/gpd/v1/organizations/{A}/debtpositions/Y-3-1"),
                &key,
            )
            .await;
        assert_eq!(position["status"], "REPORTED", "{backend:?}: {position}");
        let option = &position["paymentOption"][0];
        assert_eq!(option["status"], "PO_REPORTED", "{option}");
        assert!(option["reportingDate"].is_string(), "{option}");
        assert_eq!(option["transfer"][0]["status"], "T_REPORTED", "{option}");
        // The flows are listed a page at a time: 7 + 7 + 6, each once.
        let flows: Vec<String> = w
            .all_pages(&format!("/api/v1/enti/{A}/flows"), 7, &key)
            .await
            .iter()
            .map(|f| f["flowId"].as_str().unwrap().to_string())
            .collect();
        let unique: std::collections::BTreeSet<&String> = flows.iter().collect();
        assert_eq!((flows.len(), unique.len()), (20, 20), "{backend:?}");
        let quirks: Vec<TreasuryQuirk> = (1..=20).map(TreasuryQuirk::of).collect();
        let count = |q: TreasuryQuirk| quirks.iter().filter(|x| **x == q).count();
        let journal = w.sim.treasury_statement(A, format);
        assert_valid_statement(&journal, format);
        let new = incasso_app::reconcile::take_treasury_file(&w.store, A, journal.as_bytes(), now)
            .await
            .unwrap();
        assert_eq!(
            new,
            20 - count(TreasuryQuirk::Missing) - count(TreasuryQuirk::Late)
        );
        let again =
            incasso_app::reconcile::take_treasury_file(&w.store, A, journal.as_bytes(), now)
                .await
                .unwrap();
        assert_eq!(again, 0, "the same journal twice changes nothing");
        let s = incasso_app::reconcile::reconcile(&w.store, A, now)
            .await
            .unwrap();
        let matched = count(TreasuryQuirk::Exact)
            + count(TreasuryQuirk::SpaceInDate)
            + count(TreasuryQuirk::TrnOnly);
        assert_eq!(s.matched, matched, "{backend:?}: {s:?}");
        assert_eq!(
            s.anomalies.get("AMOUNT_MISMATCH"),
            Some(&count(TreasuryQuirk::WrongAmount))
        );
        let waiting = count(TreasuryQuirk::WrongAmount)
            + count(TreasuryQuirk::Missing)
            + count(TreasuryQuirk::Late);
        assert_eq!(s.anomalies.get("FLOW_WITHOUT_MOVEMENT"), Some(&waiting));
        // Anomalies a page at a time, all of them, each once.
        let all = w.store.recon_anomalies(A, None).await.unwrap();
        let seen = w
            .all_pages(&format!("/api/v1/enti/{A}/anomalies"), 2, &key)
            .await
            .len();
        assert_eq!(seen, all.len(), "{backend:?}");
        assert!(all.len() > 2);
        assert_eq!(s.lines_by_class.get("RECONCILED"), Some(&(2 * matched)));
        assert_eq!(
            s.lines_by_class.get("AWAITING_TREASURY"),
            Some(&(2 * waiting))
        );
        // The next journal brings the late transfers, and they match.
        let journal = w.sim.treasury_statement(A, format);
        incasso_app::reconcile::take_treasury_file(&w.store, A, journal.as_bytes(), now)
            .await
            .unwrap();
        let s = incasso_app::reconcile::reconcile(&w.store, A, now)
            .await
            .unwrap();
        assert_eq!(
            s.matched,
            matched + count(TreasuryQuirk::Late),
            "{backend:?}"
        );
        assert_eq!(
            s.anomalies.get("FLOW_WITHOUT_MOVEMENT"),
            Some(&(count(TreasuryQuirk::WrongAmount) + count(TreasuryQuirk::Missing)))
        );
    }
}

fn assert_valid_statement(document: &str, format: &incasso_simulator::TreasuryFormat) {
    let xsd = match format {
        incasso_simulator::TreasuryFormat::Opi => "treasury/opi/OPI_GIORNALE_DI_CASSA_V_1_8.xsd",
        incasso_simulator::TreasuryFormat::Camt053 { .. } => "treasury/camt/camt.053.001.02.xsd",
    };
    incasso_testkit::assert_xsd_valid(xsd, &[document]);
}

/// A simulated year: a payment a day, each day's flow published by the
/// simulated PSP with the mistakes PSPs and banks make switched on
/// (`reporting_quirks`), a receipt the Node lost, two payments collected
/// without a receipt (one of them for a position the Ente has since
/// cancelled), and the treasury's monthly statements alternating OPI
/// giornale di cassa and camt.053. incasso fetches the flows on its
/// schedule, takes the statements in and reconciles every month; at the
/// end every anomaly class is reported, each as often as the simulator
/// made it.
#[tokio::test]
async fn a_simulated_year_reconciles_with_every_anomaly_reported() {
    use incasso_simulator::{ReportingQuirk, TreasuryFormat, TreasuryQuirk};
    const DAYS: u64 = 365;
    for backend in backends() {
        let w = world(backend).await;
        let quirks = Faults {
            reporting_quirks: true,
            ..Faults::default()
        };
        let now = Utc::now();
        let mut months = 0;
        let mut camt_statements = 0;
        let statement = |w: &World, months: &mut u64| {
            *months += 1;
            let format = if months.is_multiple_of(2) {
                TreasuryFormat::Camt053 { iban: IBAN.into() }
            } else {
                TreasuryFormat::Opi
            };
            let doc = w.sim.treasury_statement(A, &format);
            assert_valid_statement(&doc, &format);
            doc
        };
        for day in 1..=DAYS {
            let iupd = format!("YEAR-{day}");
            let nav = w.notice(&iupd).await;
            w.sim.set_faults(Faults {
                lose_receipt: day == 100,
                paid_without_receipt: day == 200 || day == 300,
                ..quirks.clone()
            });
            w.sim.pay(A, &nav).await.unwrap();
            if day == 300 {
                // Cancelled before the flow says it was paid.
                w.store.invalidate_position(A, &iupd, now).await.unwrap();
            }
            assert_eq!(w.sim.publish_flows().len(), 1);
            if day.is_multiple_of(30) || day == DAYS {
                let fetched = incasso_app::reconcile::fetch_all(&w.store, now).await;
                let report = fetched[0].1.as_ref().unwrap();
                assert!(report.refused.is_empty(), "{:?}", report.refused);
                let doc = statement(&w, &mut months);
                camt_statements += usize::from(doc.contains("camt.053"));
                incasso_app::reconcile::take_treasury_file(&w.store, A, doc.as_bytes(), now)
                    .await
                    .unwrap();
                incasso_app::reconcile::reconcile(&w.store, A, now)
                    .await
                    .unwrap();
            }
        }
        // A last statement brings the transfers held back.
        let doc = statement(&w, &mut months);
        camt_statements += usize::from(doc.contains("camt.053"));
        incasso_app::reconcile::take_treasury_file(&w.store, A, doc.as_bytes(), now)
            .await
            .unwrap();
        let s = incasso_app::reconcile::reconcile(&w.store, A, now)
            .await
            .unwrap();
        let statements = months as usize;
        let of = |q: TreasuryQuirk| (1..=DAYS).filter(|n| TreasuryQuirk::of(*n) == q).count();
        let psp = |q: ReportingQuirk| (1..=DAYS).filter(|n| ReportingQuirk::of(*n) == q).count();
        let expected = [
            ("AMOUNT_MISMATCH", of(TreasuryQuirk::WrongAmount)),
            (
                "FLOW_WITHOUT_MOVEMENT",
                of(TreasuryQuirk::WrongAmount) + of(TreasuryQuirk::Missing),
            ),
            ("DUPLICATE_MOVEMENT", psp(ReportingQuirk::BookedTwice)),
            // Every statement has a citizen's own transfer; OPI journals
            // have one account, so the other bank's lands there too.
            (
                "MOVEMENT_WITHOUT_FLOW",
                statements + (statements - camt_statements),
            ),
            ("ACCOUNT_NOT_OF_ENTE", camt_statements),
            ("UNKNOWN_IUV", psp(ReportingQuirk::UnknownIuv)),
            ("FLOW_INCONSISTENT", psp(ReportingQuirk::HeaderCount)),
            ("LINE_AMOUNT_MISMATCH", psp(ReportingQuirk::LineAmount)),
            ("DUPLICATE_PAYMENT", psp(ReportingQuirk::RepeatedPayment)),
            ("PAYMENT_WITHOUT_RECEIPT", 1),
            ("FLOW_PAYMENT_NOT_APPLIED", 1),
        ];
        for (code, count) in expected {
            assert!(count > 0, "{code}: the year should make some");
            assert_eq!(
                s.anomalies.get(code),
                Some(&count),
                "{backend:?} {code}: {s:?}"
            );
        }
        assert_eq!(s.anomalies.len(), expected.len(), "{backend:?}: {s:?}");
        assert_eq!(s.flows, DAYS as usize);
        // Each anomaly is listed, with what it is about.
        let listed = w.store.recon_anomalies(A, None).await.unwrap();
        assert_eq!(
            listed.len(),
            expected.iter().map(|(_, n)| n).sum::<usize>(),
            "{backend:?}"
        );
        let lost = w
            .store
            .recon_anomalies(A, Some("PAYMENT_WITHOUT_RECEIPT"))
            .await
            .unwrap();
        let lost_iuv = &w.sim.payments()[99].iuv;
        assert!(lost[0].detail.contains(lost_iuv.as_str()), "{:?}", lost[0]);
        // The payment collected without a receipt paid its position, and
        // the same flow reported it.
        let paid = w.store.get_position(A, "YEAR-200").await.unwrap();
        assert_eq!(
            paid.position.options[0].status.as_str(),
            "PO_REPORTED",
            "{backend:?}"
        );
        // Every line is classified; those of unknown IUVs as such.
        assert_eq!(
            s.lines_by_class.get("UNKNOWN_DEBT"),
            Some(&psp(ReportingQuirk::UnknownIuv))
        );
        let lines: usize = s.lines_by_class.values().sum();
        assert_eq!(
            lines,
            DAYS as usize + psp(ReportingQuirk::UnknownIuv) + psp(ReportingQuirk::RepeatedPayment)
        );
    }
}
