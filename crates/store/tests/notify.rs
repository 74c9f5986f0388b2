//! The notification outbox's store on every backend: PUBLISHED written
//! only for services that invite, never delivered to webhooks; the
//! fan-out hands each event on once; two processes claiming at once
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL) never take the same row.

use chrono::{Duration, Utc};
use incasso_core::Cents;
use incasso_core::accertamento::{Accertamento, AccertamentoRef};
use incasso_core::catalogue::Service;
use incasso_core::ente::{Ente, StationLink};
use incasso_core::sample::{self, PositionSpec};
use incasso_store::notify::{KeyChange, NewNotifySettings, PENDING, SENDING};
use incasso_store::webhooks::NewEndpoint;
use incasso_store::{Placement, Store};
use incasso_testkit::{backends, fresh_database_url};
use std::collections::HashSet;

const ENTE: &str = "80000130585";
const IBAN: &str = "IT65B0200805364000104567891";

async fn store(url: &str) -> Store {
    let store = Store::connect(url).await.unwrap();
    let now = Utc::now();
    store
        .create_ente(
            &Ente {
                fiscal_code: ENTE.into(),
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
            ENTE,
            &StationLink {
                broker_id: "15376371009".into(),
                station_id: "15376371009_01".into(),
                segregation_code: 1,
            },
            now,
        )
        .await
        .unwrap();
    store
        .put_accertamento(
            ENTE,
            &Accertamento {
                year: 2026,
                code: "ACC-1".into(),
                description: "Accertamento di prova".into(),
                chapter: "1010".into(),
                article: None,
                siope_code: None,
                active: true,
            },
        )
        .await
        .unwrap();
    for code in ["TOLD", "QUIET"] {
        store
            .put_service(
                ENTE,
                &Service {
                    code: code.into(),
                    name: format!("Servizio {code}"),
                    office_code: None,
                    taxonomy_code: "9/0101101IM/".into(),
                    default_accertamento: None,
                    iban: None,
                    fixed_amount: None,
                    spontaneous: false,
                    pagopa_service_id: None,
                    active: true,
                },
            )
            .await
            .unwrap();
    }
    store
        .put_notify_settings(
            &NewNotifySettings {
                ente: ENTE.into(),
                service_code: "TOLD".into(),
                io_api_key: KeyChange::Set("chiave-io-di-prova-0001".into()),
                enabled: true,
                invite_on_publish: true,
                reminder_days: None,
                german: false,
                updated_by: "test".into(),
            },
            now,
        )
        .await
        .unwrap();
    store
}

async fn publish(store: &Store, service: &str, iupd: &str, publish: bool) {
    let p = sample::position(&PositionSpec {
        ente: ENTE,
        company_name: "Comune di prova",
        iupd: iupd.into(),
        debtor_index: 11,
        amount: Cents(12_345),
        description: "TARI 2026".into(),
        category: "9/0101101IM/",
        iban: IBAN,
        due_date: Utc::now() + Duration::days(30),
        installments: 0,
        second_beneficiary: None,
        quotas: vec![(
            AccertamentoRef {
                year: 2026,
                code: "ACC-1".into(),
            },
            100,
        )],
    });
    store
        .create_position_placed(
            ENTE,
            p,
            Some(Placement {
                service: Some(service.into()),
                office: None,
            }),
            Utc::now(),
            publish,
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_events_fan_out_once_and_two_processes_share_the_claims() {
    for backend in backends() {
        let url = fresh_database_url(backend).await;
        let a = store(&url).await;
        let b = Store::connect(&url).await.unwrap();
        let now = Utc::now();
        // The key is sealed... or at least read back whole by its owner.
        let s = a.notify_settings(ENTE, "TOLD").await.unwrap().unwrap();
        assert_eq!(s.io_api_key.as_deref(), Some("chiave-io-di-prova-0001"));
        a.create_webhook_endpoint(
            &NewEndpoint {
                ente: ENTE.into(),
                url: "http://127.0.0.1:1/hook".into(),
                description: "prova".into(),
                secret: "whsec_prova".into(),
                created_by: "test".into(),
            },
            now,
        )
        .await
        .unwrap();

        for n in 0..30 {
            publish(&a, "TOLD", &format!("T{n}"), true).await;
        }
        publish(&a, "QUIET", "Q", true).await;
        publish(&a, "TOLD", "DRAFT", false).await;
        // A draft published later is invited then.
        a.publish_position(ENTE, "DRAFT", Utc::now()).await.unwrap();
        let kinds = |e: &[incasso_store::events::PositionEvent]| {
            e.iter().map(|e| e.kind.clone()).collect::<Vec<_>>()
        };
        assert_eq!(
            kinds(&a.position_events(ENTE, "T0").await.unwrap()),
            ["PUBLISHED"],
            "{backend:?}"
        );
        assert!(a.position_events(ENTE, "Q").await.unwrap().is_empty());
        assert_eq!(
            kinds(&a.position_events(ENTE, "DRAFT").await.unwrap()),
            ["PUBLISHED"]
        );
        // Webhooks are not told of publications.
        assert_eq!(a.fan_out_webhooks(now, 100).await.unwrap(), 0);

        // Two processes fan out at once: each event handed on once.
        let (x, y) = tokio::join!(
            a.fan_out_notifications(now, 1000),
            b.fan_out_notifications(now, 1000)
        );
        assert_eq!(x.unwrap() + y.unwrap(), 31, "{backend:?}");
        assert_eq!(a.fan_out_notifications(now, 1000).await.unwrap(), 0);
        let pending = a
            .notifications_with_status(ENTE, PENDING, 100)
            .await
            .unwrap();
        assert_eq!(pending.len(), 31, "{backend:?}");
        assert!(
            pending
                .iter()
                .all(|n| n.kind == "INVITATION" && n.channel == "IO")
        );

        // Two processes claim at once: never the same row.
        let lease = Duration::seconds(60);
        let (x, y) = tokio::join!(
            a.claim_notifications(now, lease, 20),
            b.claim_notifications(now, lease, 20)
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        let xs: HashSet<i64> = x.iter().map(|n| n.record.id).collect();
        let ys: HashSet<i64> = y.iter().map(|n| n.record.id).collect();
        assert!(xs.is_disjoint(&ys), "{backend:?}: claimed twice");
        let rest = a.claim_notifications(now, lease, 100).await.unwrap();
        assert_eq!(xs.len() + ys.len() + rest.len(), 31, "{backend:?}");
        assert!(x.iter().chain(&y).chain(&rest).all(|n| n.attempt == 1
            && n.record.status == SENDING
            && n.io_api_key.as_deref() == Some("chiave-io-di-prova-0001")));
        // Nothing more while the leases hold; all of it once they lapse.
        assert!(
            b.claim_notifications(now, lease, 100)
                .await
                .unwrap()
                .is_empty()
        );
        let again = b
            .claim_notifications(now + lease + Duration::seconds(1), lease, 100)
            .await
            .unwrap();
        assert_eq!(again.len(), 31);
        assert!(again.iter().all(|n| n.attempt == 2));
        // A late worker cannot record over the new attempt.
        assert!(
            !a.notification_sent(again[0].record.id, 1, "MSG-LATE", now)
                .await
                .unwrap()
        );
        assert!(
            a.notification_sent(again[0].record.id, 2, "MSG-1", now)
                .await
                .unwrap()
        );
        a.close().await;
        b.close().await;
    }
}
