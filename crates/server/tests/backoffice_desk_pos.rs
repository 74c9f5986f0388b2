//! The Sportello Digitale with its card terminal (issue 18), end to end on
//! both databases: incasso, and the simulated POS gateway, terminal,
//! acquirer and Node on a port of their own. A counter clerk issues a
//! position at the desk through the pages, presses *Invia al terminale
//! POS*, and the issued page follows the terminal's session (reloading
//! itself while it is open) until the receipt has come: the position is
//! paid, and the desk's day counts it as collected at its POS. A second
//! push of the paid notice offers no button and is refused. Then the
//! payment goes where every payment goes: the acquirer PSP's reporting
//! flow, published on the simulated Node, is fetched by incasso's
//! flow-fetch use case, the treasury's OPI journal credits the flow's
//! total in one sospeso, reconciliation matches them, and an accountant
//! sees it on the back office's pages: the position paid and reported,
//! the payment reconciled, the sospeso matched to the flow, and the
//! amount on the service's accertamento to the cent (flow page and
//! reversale).

use crate::common::app;
use crate::common::backoffice;
use crate::common::bo_world;
use crate::common::desk_world;

use app::gpd::{BROKER, ENTE, OTHER_ENTE};
use backoffice::{clerk, rights};
use desk_world::{DEBTOR, DESK, SERVICE, catalogue, input_value};
use incasso_app::App;
use incasso_app::pos::{self, PosSettings};
use incasso_core::access::Role;
use incasso_core::position::OptionStatus;
use incasso_pagopa::pos::PosGatewaySettings;
use incasso_simulator::pos::{PosConfig, acquirer};
use incasso_simulator::{Faults, Route, Settings, Simulator};
use incasso_testkit::backends;
use reqwest::StatusCode;

const KEY: &str = "pos-gateway-subscription-key";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_takes_the_payment_on_the_desk_terminal() {
    for backend in backends() {
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
        let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
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

        // Issued at the desk through its pages.
        let lucia = clerk(
            &store,
            &base,
            "lucia.sportello",
            rights(Role::CounterClerk, Some(ENTE), &[], &["ANAG"]),
        )
        .await;
        let service_url = format!("/backoffice/sportello/{DESK}/servizi/{SERVICE}");
        let token = input_value(&lucia.get(&service_url).await.text(), "token");
        let fields = [
            ("token", token.as_str()),
            ("debtor_fiscal_code", DEBTOR),
            ("debtor_name", "Mario Rossi"),
            ("email", ""),
            ("pratica", "AB1234"),
            ("amount", "0"),
        ];
        let issued = lucia.post(&format!("{service_url}/emetti"), &fields).await;
        assert_eq!(issued.status, StatusCode::SEE_OTHER, "{}", issued.text());
        let location = issued.location.unwrap();
        let page = lucia.get(&location).await;
        assert!(
            page.text().contains("id=\"invia-pos\""),
            "{backend:?}: no button to the terminal: {}",
            page.text()
        );
        let iupd = location.rsplit('/').next().unwrap().to_string();
        let nav = {
            let p = store.get_position(ENTE, &iupd).await.unwrap();
            p.position.options[0]
                .notice_number
                .as_ref()
                .unwrap()
                .as_str()
                .to_string()
        };

        // Pushed to the terminal; the page follows it until paid.
        let pushed = lucia.post(&format!("{location}/pos"), &[]).await;
        assert_eq!(pushed.status, StatusCode::SEE_OTHER, "{}", pushed.text());
        assert_eq!(
            pushed.location.as_deref(),
            Some(&*format!("{location}?esito=pos"))
        );
        let mut last = String::new();
        let mut refreshed = false;
        for _ in 0..200 {
            let resp = lucia
                .client
                .get(format!("{base}{location}"))
                .header("cookie", &lucia.cookie)
                .send()
                .await
                .unwrap();
            refreshed |= resp.headers().contains_key("refresh");
            last = resp.text().await.unwrap();
            if last.contains("<strong>Pagato</strong>") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(
            last.contains("<strong>Pagato</strong>"),
            "{backend:?}: the terminal never paid: {last}"
        );
        assert!(
            refreshed,
            "{backend:?}: the page never reloaded itself while open"
        );
        assert!(
            !last.contains("id=\"invia-pos\""),
            "a paid notice is not pushed again"
        );
        let (stored, i) = store.find_by_notice_number(ENTE, &nav).await.unwrap();
        assert_ne!(stored.position.options[i].status, OptionStatus::Unpaid);

        // The day counts it as collected at the desk's POS.
        let day = lucia
            .get(&format!("/backoffice/sportello/{DESK}/giornata"))
            .await
            .text();
        assert!(day.contains("id=\"totale-incassato\">16,00 €"), "{day}");
        assert!(day.contains("id=\"totale-pos\">16,00 €"), "{day}");
        assert!(day.contains("POS dello sportello"), "{day}");

        // Pushing the paid notice again is refused, on the page.
        let again = lucia.post(&format!("{location}/pos"), &[]).await;
        assert_ne!(again.status, StatusCode::SEE_OTHER, "{}", again.text());
        assert!(again.status.as_u16() < 500, "{}", again.status);

        // Reported by the acquirer, credited by the treasury, reconciled.
        let iuv = stored.position.options[i].iuv.clone().expect("an IUV");
        bo_world::connect_station(&store, ENTE, "ST_01", &sim_url, KEY).await;
        let flows = bo_world::report_and_reconcile(&store, &sim, ENTE, chrono::Utc::now()).await;
        let flow = flows
            .iter()
            .find(|f| f.ente == ENTE)
            .unwrap_or_else(|| panic!("{backend:?}: no flow for the Ente: {flows:?}"));
        assert!(
            flow.flow_id.contains(&psp.id),
            "{backend:?}: the acquirer's flow: {flow:?}"
        );
        assert_eq!((flow.payments, flow.total_cents), (1, 1_600), "{flow:?}");
        let sospeso = store
            .movements(ENTE)
            .await
            .unwrap()
            .into_iter()
            .find(|m| m.amount.0 == 1_600)
            .unwrap_or_else(|| panic!("{backend:?}: no sospeso of 16,00"));
        let row = store
            .movement_row(ENTE, &sospeso.movement_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.flow_id.as_deref(), Some(&*flow.flow_id), "{row:?}");
        assert_eq!(row.status.as_deref(), Some("MATCHED"), "{row:?}");
        assert!(
            store.recon_anomalies(ENTE, None).await.unwrap().is_empty(),
            "{backend:?}: a clean payment leaves no anomaly"
        );

        // What the accountant sees.
        let anna = clerk(
            &store,
            &base,
            "anna.ragioneria",
            rights(Role::Accountant, Some(ENTE), &[], &[]),
        )
        .await;
        let position = anna.get(&format!("/backoffice/posizioni/{iupd}")).await;
        assert_eq!(position.status, StatusCode::OK, "{}", position.text());
        let position = position.text();
        assert!(
            position.contains("Pagata e rendicontata"),
            "{backend:?}: the position reported: {position}"
        );
        assert!(
            position.contains(&psp.name) && position.contains("16,00"),
            "the acquirer's receipt: {position}"
        );
        let reconciled = anna
            .get("/backoffice/tesoreria/righe?classe=RECONCILED")
            .await
            .text();
        assert!(
            reconciled.contains(&iuv),
            "{backend:?}: reconciled: {reconciled}"
        );
        let flow_page = anna
            .get(&format!("/backoffice/flussi/{}", flow.flow_id))
            .await
            .text();
        assert!(flow_page.contains(&iuv), "{flow_page}");
        assert!(
            flow_page.contains("2026/ACC-ANAG") && flow_page.contains("16,00"),
            "the flow over the service's accertamento: {flow_page}"
        );
        assert!(
            flow_page.contains(&sospeso.document_number),
            "the flow names its sospeso: {flow_page}"
        );
        let movement = anna
            .get(&format!(
                "/backoffice/tesoreria/movimento?id={}",
                backoffice::encode(&sospeso.movement_id)
            ))
            .await
            .text();
        assert!(
            movement.contains("Abbinato") && movement.contains(&flow.flow_id),
            "{backend:?}: the sospeso matched to its flow: {movement}"
        );
        // The reversale proposal needs the Ente's treasury settings.
        incasso_app::reconcile::put_treasury_settings(
            &store,
            ENTE,
            &incasso_app::reconcile::TreasurySettings {
                bank_abi: "03069".into(),
                ipa_office_code: "UFAB12".into(),
                siope_ente_code: "012345678".into(),
                ente_channel: "A2A-12345678".into(),
                bank_channel: "A2A-87654321".into(),
                bank_ente_code: "1234567".into(),
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();
        let rev = anna
            .get(&format!(
                "/backoffice/tesoreria/reversale?id={}&numero=1",
                backoffice::encode(&sospeso.movement_id)
            ))
            .await;
        assert_eq!(rev.status, StatusCode::OK, "{}", rev.text());
        let root =
            incasso_xml::parse(rev.text().as_bytes(), incasso_xml::Limits::default()).unwrap();
        let r = root.child("reversale").unwrap();
        assert_eq!(r.text_of("importo_reversale"), Some("16.00"));
        let parts: Vec<(String, String)> = r
            .child("informazioni_versante")
            .unwrap()
            .child("dati_a_disposizione_ente_versante")
            .unwrap()
            .children_named("accertamento")
            .map(|a| {
                (
                    a.text_of("codice").unwrap().to_string(),
                    a.text_of("importo").unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(parts, [("ACC-ANAG".to_string(), "16.00".to_string())]);
    }
}
