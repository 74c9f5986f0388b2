//! GPD's massive upload, cut short by the death of its process, resumes
//! where its last committed chunk left it, and never applies a chunk twice
//! (issue 15). Each test runs on every backend.

use chrono::{Duration, Utc};
use incasso_app::upload::{self, Items};
use incasso_app::{App, Clock, Settings};
use incasso_core::Cents;
use incasso_core::ente::{Ente, StationLink};
use incasso_core::sample::{self, PositionSpec};
use incasso_store::{
    ListFilter, Store, StoreError, SupplyRecord, UploadAnswer, UploadProgress, UploadRecord,
};
use incasso_testkit::{backends, fresh_database_url};

const ENTE: &str = "80000130585";
const BROKER: &str = "15376371009";
const IBAN: &str = "IT65B0200805364000104567891";
const FILE_ID: &str = "15376371009_80000130585_0123456789abcdef0123456789abcdef";

async fn store(url: &str) -> Store {
    let store = Store::connect(url).await.unwrap();
    let now = Utc::now();
    store
        .create_ente(
            &Ente {
                fiscal_code: ENTE.into(),
                name: "Comune di Borgo Esempio".into(),
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
                broker_id: BROKER.into(),
                station_id: format!("{BROKER}_01"),
                segregation_code: 1,
            },
            now,
        )
        .await
        .unwrap();
    store
}

fn position(i: u64) -> incasso_core::position::DebtPosition {
    sample::position(&PositionSpec {
        ente: ENTE,
        company_name: "Comune di Borgo Esempio",
        iupd: format!("RESUME-{i:04}"),
        debtor_index: i,
        amount: Cents(10_000 + i as i64),
        description: "TARI 2026".into(),
        category: "9/0101101IM/",
        iban: IBAN,
        due_date: Utc::now() + Duration::days(60),
        installments: 0,
        second_beneficiary: None,
        quotas: vec![],
    })
}

fn created(range: std::ops::Range<usize>) -> Vec<UploadAnswer> {
    range
        .map(|i| UploadAnswer {
            item: i as i64,
            status_code: 201,
            code: String::new(),
            message: "Debt position CREATED".into(),
            iupd: format!("RESUME-{i:04}"),
        })
        .collect()
}

async fn count_positions(store: &Store) -> u64 {
    store
        .list_positions(
            ENTE,
            &ListFilter {
                limit: 1,
                ..ListFilter::default()
            },
        )
        .await
        .unwrap()
        .items_found
}

/// A CREATE upload of `submitted` positions taken by a worker named "dead",
/// last heard of `at`.
fn upload_by_dead_worker(submitted: usize, at: chrono::DateTime<Utc>) -> UploadRecord {
    UploadRecord {
        file_id: FILE_ID.into(),
        ente: ENTE.into(),
        broker: BROKER.into(),
        operation: "CREATE".into(),
        supply_id: 0,
        submitted: submitted as i64,
        processed: 0,
        started_at: at,
        ended_at: None,
        owner: "dead".into(),
        heartbeat: at,
    }
}

#[tokio::test]
async fn an_upload_whose_process_died_resumes_and_applies_nothing_twice() {
    for backend in backends() {
        let store = store(&fresh_database_url(backend).await).await;
        let positions: Vec<_> = (0..250).map(position).collect();
        // A worker took the file, committed its first chunk of 100 with its
        // progress, and died ten minutes ago.
        let long_ago = Utc::now() - Duration::minutes(10);
        let record = upload_by_dead_worker(positions.len(), long_ago);
        let items = serde_json::to_vec(&Items::Create(positions.clone())).unwrap();
        let supply = SupplyRecord {
            layout: "gpd-massive-v2".into(),
            file_name: "positions.zip".into(),
            file_hash: format!("hash/{FILE_ID}"),
            started_at: long_ago,
            ..SupplyRecord::default()
        };
        let supply_id = store.begin_upload(&record, &items, &supply).await.unwrap();
        let dead = |processed: i64, answers| UploadProgress {
            file_id: FILE_ID.into(),
            owner: "dead".into(),
            processed,
            answers,
            at: long_ago,
        };
        store
            .create_positions(
                ENTE,
                positions[..100].to_vec(),
                long_ago,
                true,
                Some(&dead(100, created(0..100))),
            )
            .await
            .unwrap();
        assert_eq!(count_positions(&store).await, 100);

        // Another process's job finds it silent, takes it over, goes on.
        let resumed = upload::resume_stale(&store, Clock::System).await.unwrap();
        assert_eq!(resumed, 1, "{backend:?}");
        let mut waited = 0;
        let done = loop {
            let u = store.upload(ENTE, BROKER, FILE_ID).await.unwrap();
            if u.ended_at.is_some() {
                break u;
            }
            waited += 1;
            assert!(waited < 400, "{backend:?}: not done in 20 s: {u:?}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        assert_eq!(done.processed, 250);
        assert_ne!(done.owner, "dead");
        // Every position once: the first chunk was not created again (that
        // would have answered 409), the rest were.
        assert_eq!(count_positions(&store).await, 250, "{backend:?}");
        let answers = store.upload_answers(FILE_ID).await.unwrap();
        assert_eq!(answers.len(), 250);
        assert!(
            answers.iter().all(|a| a.status_code == 201),
            "{backend:?}: {:?}",
            answers.iter().find(|a| a.status_code != 201)
        );
        let supply = store.supply(ENTE, supply_id).await.unwrap();
        assert_eq!(supply.status, "LOADED");
        assert_eq!(supply.rows_loaded, 250);
        assert_eq!(supply.positions_created, 250);
        // And the report says so.
        let app = App::new(store.clone(), Settings::new("http://incasso.test"));
        let ctx = app.ctx(incasso_app::Caller::System("test"));
        let report = upload::get(&ctx, ENTE, BROKER, FILE_ID).await.unwrap();
        assert_eq!(report.status(), upload::OperationStatus::Completed);
        assert_eq!(report.responses.len(), 1);
        assert_eq!(report.responses[0].iupds.len(), 250);

        // The dead worker, were it to wake up, can write nothing more.
        let late = store
            .create_positions(
                ENTE,
                vec![position(999)],
                Utc::now(),
                true,
                Some(&dead(101, created(100..101))),
            )
            .await;
        assert!(matches!(late, Err(StoreError::Aborted(_))), "{late:?}");
        assert_eq!(count_positions(&store).await, 250);
        // Nothing is left to resume.
        assert_eq!(
            upload::resume_stale(&store, Clock::System).await.unwrap(),
            0
        );
    }
}

/// The sweeper of abandoned loads marks a supply left LOADING by a dead
/// process as INTERRUPTED, and leaves alone one whose loader still holds
/// its claim and a GPD upload's, which the upload worker resumes itself.
#[tokio::test]
async fn only_a_supply_whose_loader_died_is_marked_interrupted() {
    for backend in backends() {
        let store = store(&fresh_database_url(backend).await).await;
        let now = Utc::now();
        let supply = |hash: &str| SupplyRecord {
            layout: "incasso-csv".into(),
            file_name: format!("{hash}.csv"),
            file_hash: hash.into(),
            started_at: now,
            ..SupplyRecord::default()
        };
        let dead = store
            .begin_supply(ENTE, &supply("dead"), now)
            .await
            .unwrap();
        let alive = store
            .begin_supply(ENTE, &supply("alive"), now)
            .await
            .unwrap();
        let claim = store.claim_supply(ENTE, "alive").await.unwrap().unwrap();
        let record = upload_by_dead_worker(1, now);
        let items = serde_json::to_vec(&Items::Create(vec![position(0)])).unwrap();
        let upload = store
            .begin_upload(&record, &items, &supply("upload"))
            .await
            .unwrap();

        let round = incasso_app::supply::mark_abandoned(&store).await.unwrap();
        assert_eq!(round.marked, vec![dead], "{backend:?}");
        assert!(round.failed.is_empty(), "{backend:?}: {:?}", round.failed);
        let status = |id| {
            let store = store.clone();
            async move {
                let s = store.supply(ENTE, id).await.unwrap();
                (s.status, s.message)
            }
        };
        let (dead_status, message) = status(dead).await;
        assert_eq!(dead_status, incasso_store::INTERRUPTED, "{backend:?}");
        assert!(
            message.contains("nulla è stato salvato") && message.contains("rinviare il file"),
            "{backend:?}: {message}"
        );
        assert_eq!(status(alive).await.0, incasso_store::LOADING, "{backend:?}");
        assert_eq!(
            status(upload).await.0,
            incasso_store::LOADING,
            "{backend:?}"
        );
        // Nothing more to mark while the claim is held; its loader dies.
        assert!(
            incasso_app::supply::mark_abandoned(&store)
                .await
                .unwrap()
                .marked
                .is_empty()
        );
        claim.release().await;
        let marked = incasso_app::supply::mark_abandoned(&store).await.unwrap();
        assert_eq!(marked.marked, vec![alive], "{backend:?}");
        store.close().await;
    }
}
