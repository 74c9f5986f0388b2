//! Position events (the outbox) and webhook deliveries, on every backend:
//! each event is written by the transaction of its change, once; the
//! fan-out hands each on once; deliveries are claimed by one worker, in
//! order per position, and taken again when a lease lapses.

use chrono::{DateTime, Duration, Utc};
use incasso_core::Cents;
use incasso_core::accertamento::{Accertamento, AccertamentoRef};
use incasso_core::ente::{Ente, StationLink};
use incasso_core::position::DebtPosition;
use incasso_core::sample::{self, PositionSpec};
use incasso_store::events::PositionEvent;
use incasso_store::webhooks::{DELIVERED, FAILED, NewEndpoint, PENDING, SENDING};
use incasso_store::{ReceiptOutcome, ReceiptRecord, Store, StoreError};
use incasso_testkit::{backends, fresh_database_url};
use std::collections::HashSet;

const ENTE: &str = "80000130585";
const IBAN: &str = "IT65B0200805364000104567891";

async fn store_with_ente(url: &str) -> Store {
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
    store
}

fn position(iupd: &str, installments: u32) -> DebtPosition {
    sample::position(&PositionSpec {
        ente: ENTE,
        company_name: "Comune di prova",
        iupd: iupd.into(),
        debtor_index: 11,
        amount: Cents(12_345),
        description: "TARI 2026".into(),
        category: "9/0101101IM/",
        iban: IBAN,
        due_date: Utc::now() + Duration::days(30),
        installments,
        second_beneficiary: None,
        quotas: vec![(
            AccertamentoRef {
                year: 2026,
                code: "ACC-1".into(),
            },
            100,
        )],
    })
}

/// (notice number, IUV, amount) of each option of a stored position.
async fn options(store: &Store, iupd: &str) -> Vec<(String, String, i64)> {
    store
        .get_position(ENTE, iupd)
        .await
        .unwrap()
        .position
        .options
        .iter()
        .map(|o| {
            (
                o.notice_number.as_ref().unwrap().as_str().to_string(),
                o.iuv.clone().unwrap(),
                o.amount.0,
            )
        })
        .collect()
}

fn receipt(id: &str, nav: &str, iuv: &str, amount: i64, outcome: &str) -> ReceiptRecord {
    ReceiptRecord {
        ente: ENTE.into(),
        receipt_id: id.into(),
        notice_number: nav.into(),
        iuv: iuv.into(),
        owner_ente: ENTE.into(),
        outcome: outcome.into(),
        amount,
        fee: Some(100),
        psp_id: "PSPEITMM000".into(),
        psp_name: "PSP di prova".into(),
        channel_id: "PSPEITMM000_01".into(),
        payment_method: Some("CP".into()),
        payment_date_time: Some(Utc::now()),
        application_date: None,
        transfer_date: None,
        station_id: "15376371009_01".into(),
        primitive: "paSendRTV2".into(),
        stand_in: false,
        transfers_json: "[]".into(),
        raw_xml: "<receipt/>".into(),
        debtor: None,
    }
}

fn flow(flow_id: &str, at: DateTime<Utc>, iuvs: &[&str]) -> incasso_core::fdr::ReportingFlow {
    use incasso_core::fdr::{FlowOutcome, FlowPayment, PartyIdKind, ReportingFlow};
    let payments: Vec<FlowPayment> = iuvs
        .iter()
        .map(|iuv| FlowPayment {
            iuv: iuv.to_string(),
            iur: format!("IUR-{iuv}"),
            transfer_index: Some(1),
            amount: Cents(12_345),
            outcome: FlowOutcome::Paid,
            outcome_date: at.date_naive(),
        })
        .collect();
    ReportingFlow {
        flow_id: flow_id.into(),
        flow_date_time: at,
        settlement_ref: format!("TRN-{flow_id}"),
        settlement_date: at.date_naive(),
        psp_id: "PSPEITMM000".into(),
        psp_id_kind: PartyIdKind::Bic,
        psp_name: None,
        bic: None,
        ente: ENTE.into(),
        ente_name: None,
        declared_count: payments.len() as u64,
        declared_total: Cents(12_345 * payments.len() as i64),
        payments,
        revision: None,
    }
}

fn kinds(events: &[PositionEvent]) -> Vec<&str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

/// A receipt writes one PAID with it (the Node sending it again writes
/// nothing more), a KO receipt none; a cancellation writes CANCELLED,
/// a draft's deletion nothing; a flow writes REPORTED for the paid options
/// it lists, once, and an option paid after its flow gets PAID then
/// REPORTED.
#[tokio::test]
async fn each_change_writes_its_event_once() {
    for backend in backends() {
        let store = store_with_ente(&fresh_database_url(backend).await).await;
        let now = Utc::now();
        store
            .create_position(ENTE, position("EV-1", 0), now, true)
            .await
            .unwrap();
        let (nav, iuv, amount) = options(&store, "EV-1").await.remove(0);

        let ko = receipt("R-KO", &nav, &iuv, amount, "KO");
        store.record_receipt(&ko, now).await.unwrap();
        assert!(
            store
                .position_events(ENTE, "EV-1")
                .await
                .unwrap()
                .is_empty()
        );

        let r = receipt("R-1", &nav, &iuv, amount, "OK");
        let recorded = store.record_receipt_for_node(&r, now).await.unwrap();
        assert_eq!(recorded.outcome, ReceiptOutcome::Applied);
        assert!(
            !recorded.may_be_held_by_pos,
            "no desk holds the notice: the Node's door need not look"
        );
        assert!(matches!(
            store.record_receipt(&r, now).await,
            Err(StoreError::Conflict(_))
        ));
        let events = store.position_events(ENTE, "EV-1").await.unwrap();
        assert_eq!(kinds(&events), ["PAID"], "{backend:?}");
        let paid = &events[0];
        assert_eq!(paid.notice_number.as_deref(), Some(nav.as_str()));
        assert_eq!(paid.iuv.as_deref(), Some(iuv.as_str()));
        assert_eq!(paid.payload["receiptId"], "R-1");
        assert_eq!(paid.payload["amountCents"], amount);
        assert_eq!(paid.payload["positionStatus"], "PAID");

        // Another receipt for the paid notice is a double payment: money
        // to refund, no news for the position.
        let twice = receipt("R-2", &nav, &iuv, amount, "OK");
        assert!(matches!(
            store.record_receipt(&twice, now).await.unwrap(),
            ReceiptOutcome::Flagged(_)
        ));
        assert_eq!(store.position_events(ENTE, "EV-1").await.unwrap().len(), 1);

        // The flow that lists it: REPORTED, once, whatever comes again.
        let at = now - Duration::hours(2);
        store
            .store_flow(ENTE, &flow("F-1", at, &[&iuv, "99999999999999999"]), now)
            .await
            .unwrap();
        store
            .store_flow(ENTE, &flow("F-1", at, &[&iuv]), now)
            .await
            .unwrap();
        store
            .store_flow(ENTE, &flow("F-1", now - Duration::hours(1), &[&iuv]), now)
            .await
            .unwrap();
        let events = store.position_events(ENTE, "EV-1").await.unwrap();
        assert_eq!(kinds(&events), ["PAID", "REPORTED"], "{backend:?}");
        assert_eq!(events[1].payload["flowId"], "F-1");
        assert_eq!(events[1].payload["settlementRef"], "TRN-F-1");
        assert_eq!(events[1].payload["amountCents"], 12_345);

        // The flow before the payment: nothing to tell until it is paid,
        // then PAID and REPORTED in that order.
        store
            .create_position(ENTE, position("EV-2", 0), now, true)
            .await
            .unwrap();
        let (nav2, iuv2, _) = options(&store, "EV-2").await.remove(0);
        store
            .store_flow(ENTE, &flow("F-2", at, &[&iuv2]), now)
            .await
            .unwrap();
        assert!(
            store
                .position_events(ENTE, "EV-2")
                .await
                .unwrap()
                .is_empty()
        );
        store.mark_option_paid(ENTE, &nav2, now, now).await.unwrap();
        let events = store.position_events(ENTE, "EV-2").await.unwrap();
        assert_eq!(kinds(&events), ["PAID", "REPORTED"], "{backend:?}");
        assert_eq!(events[0].payload["channel"], "OUTSIDE_PAGOPA");
        assert!(events[0].id < events[1].id);

        // The same with the Node's receipt, which reads the flows' listing
        // with the position: PAID, then REPORTED.
        store
            .create_position(ENTE, position("EV-2R", 0), now, true)
            .await
            .unwrap();
        let (nav2r, iuv2r, amount2r) = options(&store, "EV-2R").await.remove(0);
        store
            .store_flow(ENTE, &flow("F-2R", at, &[&iuv2r]), now)
            .await
            .unwrap();
        let r = receipt("R-2R", &nav2r, &iuv2r, amount2r, "OK");
        assert_eq!(
            store.record_receipt(&r, now).await.unwrap(),
            ReceiptOutcome::Applied
        );
        let events = store.position_events(ENTE, "EV-2R").await.unwrap();
        assert_eq!(kinds(&events), ["PAID", "REPORTED"], "{backend:?}");
        assert_eq!(events[1].payload["flowId"], "F-2R");
        assert!(events[0].id < events[1].id);

        // Cancelled: invalidated, or deleted once published; a draft's
        // deletion is nobody's news.
        store
            .create_position(ENTE, position("EV-3", 0), now, true)
            .await
            .unwrap();
        store.invalidate_position(ENTE, "EV-3", now).await.unwrap();
        let events = store.position_events(ENTE, "EV-3").await.unwrap();
        assert_eq!(kinds(&events), ["CANCELLED"], "{backend:?}");
        assert_eq!(events[0].payload["reason"], "INVALIDATED");
        store
            .create_position(ENTE, position("EV-4", 2), now, true)
            .await
            .unwrap();
        store.delete_position(ENTE, "EV-4").await.unwrap();
        let events = store.position_events(ENTE, "EV-4").await.unwrap();
        assert_eq!(kinds(&events), ["CANCELLED"], "{backend:?}");
        assert_eq!(events[0].payload["reason"], "DELETED");
        assert_eq!(
            events[0].payload["noticeNumbers"].as_array().unwrap().len(),
            3
        );
        store
            .create_position(ENTE, position("EV-5", 0), now, false)
            .await
            .unwrap();
        store.delete_position(ENTE, "EV-5").await.unwrap();
        assert!(
            store
                .position_events(ENTE, "EV-5")
                .await
                .unwrap()
                .is_empty()
        );

        // Ids grow in the order things happened.
        let all = store.events_after(0, 100).await.unwrap();
        let ids: Vec<i64> = all.iter().map(|e| e.id).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        assert_eq!(all.len(), 8, "{backend:?}: {:?}", kinds(&all));
        store.close().await;
    }
}

fn endpoint(url: &str) -> NewEndpoint {
    NewEndpoint {
        ente: ENTE.into(),
        url: url.into(),
        description: "prova".into(),
        secret: "whsec_prova".into(),
        created_by: "system:test".into(),
    }
}

/// The fan-out hands each event on once, to the endpoints registered
/// before it; deliveries of one position go one at a time, in order; two
/// workers never claim the same; a lapsed lease lets another take it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_go_once_in_order_per_position() {
    for backend in backends() {
        let url = fresh_database_url(backend).await;
        let a = store_with_ente(&url).await;
        let b = Store::connect(&url).await.unwrap();
        let now = Utc::now();
        // An event before any endpoint: delivered to none.
        a.create_position(ENTE, position("OLD", 0), now, true)
            .await
            .unwrap();
        a.invalidate_position(ENTE, "OLD", now).await.unwrap();
        let first = a
            .create_webhook_endpoint(&endpoint("https://example.org/hook"), now)
            .await
            .unwrap();
        assert!(matches!(
            a.create_webhook_endpoint(&endpoint("https://example.org/hook"), now)
                .await,
            Err(StoreError::Conflict(_))
        ));
        let off = a
            .create_webhook_endpoint(&endpoint("https://example.org/off"), now)
            .await
            .unwrap();
        a.set_webhook_endpoint_active(ENTE, off.id, false, now)
            .await
            .unwrap();
        // Three positions of two installments, each paid in order: two
        // PAID events per position.
        for n in 0..3 {
            let iupd = format!("INST-{n}");
            a.create_position(ENTE, position(&iupd, 2), now, true)
                .await
                .unwrap();
            let opts = options(&a, &iupd).await;
            for (i, (nav, iuv, amount)) in opts.iter().skip(1).enumerate() {
                let r = receipt(&format!("R-{n}-{i}"), nav, iuv, *amount, "OK");
                a.record_receipt(&r, now).await.unwrap();
            }
        }
        let (x, y) = tokio::join!(a.fan_out_webhooks(now, 100), b.fan_out_webhooks(now, 100));
        assert_eq!(x.unwrap() + y.unwrap(), 7, "{backend:?}: every event once");
        assert_eq!(a.fan_out_webhooks(now, 100).await.unwrap(), 0);
        assert!(a.event_cursor("webhooks").await.unwrap() > 0);
        let listed = a.webhook_deliveries(ENTE, first.id, 100).await.unwrap();
        assert_eq!(
            listed.len(),
            6,
            "{backend:?}: the old event is not delivered"
        );
        // A paused endpoint's deliveries are queued all the same (sent when
        // it is enabled again); the claims below never take them.
        assert_eq!(
            a.webhook_deliveries(ENTE, off.id, 100).await.unwrap().len(),
            6,
            "{backend:?}: a paused endpoint misses nothing"
        );

        // Claimed at once by two workers: one per position, the first of
        // its two, and no delivery twice.
        let lease = Duration::seconds(30);
        let (x, y) = tokio::join!(
            a.claim_due_deliveries(now, lease, 100),
            b.claim_due_deliveries(now, lease, 100)
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        let ids: HashSet<i64> = x.iter().chain(&y).map(|d| d.id).collect();
        assert_eq!(ids.len(), x.len() + y.len(), "{backend:?}: claimed twice");
        assert_eq!(ids.len(), 3, "{backend:?}: one per position");
        let claimed: Vec<_> = x.iter().chain(&y).cloned().collect();
        for d in &claimed {
            assert_eq!(d.attempt, 1);
            assert_eq!(d.secret, "whsec_prova");
            assert_eq!(d.url, "https://example.org/hook");
            assert!(d.event.iupd.starts_with("INST-"));
        }
        assert!(
            a.claim_due_deliveries(now, lease, 100)
                .await
                .unwrap()
                .is_empty()
        );

        // One delivered: its position's next comes due. One fails: its
        // next waits for it. The third's worker dies: after the lease it
        // is taken again, attempt 2, and a late outcome of attempt 1
        // changes nothing.
        let (ok, ko, dead) = (&claimed[0], &claimed[1], &claimed[2]);
        assert!(
            a.delivery_delivered(ok.id, 1, 200, "ok", now)
                .await
                .unwrap()
        );
        let later = now + Duration::minutes(1);
        assert!(
            a.delivery_not_delivered(ko.id, 1, Some(500), "boom", Some(later))
                .await
                .unwrap()
        );
        let next = a.claim_due_deliveries(now, lease, 100).await.unwrap();
        assert_eq!(next.len(), 1, "{backend:?}");
        assert_eq!(next[0].event.position_id, ok.event.position_id);
        assert!(next[0].event.id > ok.event.id);
        let after_lease = now + lease + Duration::seconds(1);
        let again = b
            .claim_due_deliveries(after_lease, lease, 100)
            .await
            .unwrap();
        let again_ids: HashSet<i64> = again.iter().map(|d| d.id).collect();
        assert!(again_ids.contains(&dead.id), "{backend:?}: lease lapsed");
        assert!(again_ids.contains(&next[0].id), "{backend:?}: lease lapsed");
        assert!(!again_ids.contains(&ko.id), "{backend:?}: not due yet");
        let retaken = again.iter().find(|d| d.id == dead.id).unwrap();
        assert_eq!(retaken.attempt, 2);
        assert!(
            !a.delivery_delivered(dead.id, 1, 200, "late", now)
                .await
                .unwrap()
        );
        assert!(
            a.delivery_delivered(dead.id, 2, 200, "ok", now)
                .await
                .unwrap()
        );

        // Given up: no longer holds its position's next back.
        let due_ko = a.claim_due_deliveries(later, lease, 100).await.unwrap();
        let ko_again = due_ko.iter().find(|d| d.id == ko.id).unwrap();
        assert!(
            a.delivery_not_delivered(ko.id, ko_again.attempt, Some(500), "boom", None)
                .await
                .unwrap()
        );
        let statuses: Vec<(i64, String)> = a
            .webhook_deliveries(ENTE, first.id, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|d| (d.id, d.status))
            .collect();
        assert!(statuses.contains(&(ko.id, FAILED.to_string())));
        assert!(statuses.contains(&(ok.id, DELIVERED.to_string())));
        assert!(statuses.iter().any(|(_, s)| s == SENDING || s == PENDING));

        // Acknowledged once; the second time is a replay.
        let target = a.delivery_to_ack(ok.id).await.unwrap().unwrap();
        assert_eq!((target.ente.as_str(), target.acked), (ENTE, false));
        assert!(a.acknowledge_delivery(ok.id, now).await.unwrap());
        assert!(!a.acknowledge_delivery(ok.id, now).await.unwrap());
        assert!(a.delivery_to_ack(ok.id).await.unwrap().unwrap().acked);
        assert!(a.delivery_to_ack(999_999).await.unwrap().is_none());

        // A failed delivery can be tried again by a person.
        assert!(a.retry_delivery(ENTE, ko.id, later).await.unwrap());
        assert!(!a.retry_delivery("00000000000", ko.id, later).await.unwrap());

        a.delete_webhook_endpoint(ENTE, first.id).await.unwrap();
        assert!(a.webhook_endpoints(ENTE).await.unwrap().len() == 1);
        a.close().await;
        b.close().await;
    }
}

async fn begin_bulk(
    store: &Store,
    name: &str,
) -> (incasso_store::Bulk, incasso_store::SupplyRecord) {
    let now = Utc::now();
    let record = incasso_store::SupplyRecord {
        layout: "incasso-csv".into(),
        file_name: format!("{name}.csv"),
        file_hash: name.to_string(),
        started_at: now,
        ..Default::default()
    };
    let id = store.begin_supply(ENTE, &record, now).await.unwrap();
    (store.bulk(ENTE, "incasso-csv", id).await.unwrap(), record)
}

/// A supply that cancels positions tells the published ones at its
/// commit (on SQLite through the supply's own connection), and a supply
/// rolled back tells nothing.
#[tokio::test]
async fn a_supply_s_cancellations_are_told_at_its_commit_only() {
    for backend in backends() {
        let store = store_with_ente(&fresh_database_url(backend).await).await;
        let now = Utc::now();
        for (iupd, publish) in [("S-PUB", true), ("S-DRAFT", false), ("S-BACK", true)] {
            store
                .create_position(ENTE, position(iupd, 0), now, publish)
                .await
                .unwrap();
        }
        let (mut bulk, _) = begin_bulk(&store, "back").await;
        bulk.cancel("S-BACK", now).await.unwrap();
        bulk.rollback().await.unwrap();
        assert!(
            store
                .position_events(ENTE, "S-BACK")
                .await
                .unwrap()
                .is_empty()
        );

        let (mut bulk, record) = begin_bulk(&store, "cancel").await;
        bulk.cancel("S-PUB", now).await.unwrap();
        bulk.cancel("S-DRAFT", now).await.unwrap();
        let done = incasso_store::SupplyRecord {
            status: "LOADED".into(),
            accepted: true,
            rows_loaded: 2,
            ..record.clone()
        };
        bulk.commit(&done, now).await.unwrap();
        let events = store.position_events(ENTE, "S-PUB").await.unwrap();
        assert_eq!(kinds(&events), ["CANCELLED"], "{backend:?}");
        assert_eq!(events[0].payload["reason"], "INVALIDATED");
        assert!(
            store
                .position_events(ENTE, "S-DRAFT")
                .await
                .unwrap()
                .is_empty()
        );
        store.close().await;
    }
}

/// On PostgreSQL an event's id is given at its transaction's commit
/// (migration 0035): a transaction that wrote first but commits last gets
/// the larger ids, its own events keep their order, no reader ever sees a
/// provisional id, and a key referenced by a delivery survives the
/// renumbering of later events. A cursor that reads by increasing id
/// therefore never skips an event. SQLite has one writer at a time.
#[tokio::test]
async fn event_ids_follow_commit_order_on_postgres() {
    use sqlx::{Connection, Row};
    if !backends().contains(&incasso_testkit::Backend::Postgres) {
        return;
    }
    let url = fresh_database_url(incasso_testkit::Backend::Postgres).await;
    let store = store_with_ente(&url).await;
    store.close().await;
    let insert = |key: &str| {
        format!(
            "INSERT INTO position_event_rows (natural_key, ente, position_id, iupd, kind, payload,
                created_at)
             VALUES ('{key}', '{ENTE}', 1, 'EV-ORDER', 'PAID', '{{}}', 0)"
        )
    };
    let ids = |rows: Vec<sqlx::postgres::PgRow>| {
        rows.iter()
            .map(|r| (r.get::<String, _>("natural_key"), r.get::<i64, _>("id")))
            .collect::<Vec<_>>()
    };
    let read = "SELECT natural_key, id FROM position_events ORDER BY id";
    let mut first = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut second = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut reader = sqlx::PgConnection::connect(&url).await.unwrap();

    sqlx::raw_sql("BEGIN").execute(&mut first).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(insert("A-1")))
        .execute(&mut first)
        .await
        .unwrap();
    // Not committed yet: it has no place in the readers' order, even for
    // its own transaction.
    let seen_inside = ids(sqlx::query(read).fetch_all(&mut first).await.unwrap());
    assert!(seen_inside.is_empty(), "{seen_inside:?}");

    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "BEGIN; {}; COMMIT",
        insert("B-1")
    )))
    .execute(&mut second)
    .await
    .unwrap();
    let midway = ids(sqlx::query(read).fetch_all(&mut reader).await.unwrap());
    assert_eq!(midway.len(), 1, "{midway:?}");
    assert_eq!(midway[0].0, "B-1");
    assert!(midway[0].1 > 0, "{midway:?}");
    // A delivery takes the committed event's id, as the fan-out does.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO webhook_endpoints (ente, url, description, secret, active, first_event,
            created_at, created_by, updated_at)
         VALUES ('{ENTE}', 'https://example.org/h', 'prova', 'x', 1, 0, 0, 'test', 0);
         INSERT INTO webhook_deliveries (endpoint_id, event_id, position_id, status, attempts,
            next_attempt_at, created_at)
         SELECT w.id, {}, 1, 'PENDING', 0, 0, 0 FROM webhook_endpoints w",
        midway[0].1
    )))
    .execute(&mut reader)
    .await
    .unwrap();

    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("{}; COMMIT", insert("A-2"))))
        .execute(&mut first)
        .await
        .unwrap();
    let after = ids(sqlx::query(read).fetch_all(&mut reader).await.unwrap());
    let keys: Vec<&str> = after.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["B-1", "A-1", "A-2"], "{after:?}");
    assert!(after.iter().all(|(_, id)| *id > 0), "{after:?}");
    assert_eq!(after[0], midway[0], "a committed id never changes");
    let delivered: i64 = sqlx::query_scalar("SELECT event_id FROM webhook_deliveries")
        .fetch_one(&mut reader)
        .await
        .unwrap();
    assert_eq!(delivered, midway[0].1);

    // Through the store as well: a receipt's PAID comes after both.
    let store = Store::connect(&url).await.unwrap();
    let now = Utc::now();
    store
        .create_position(ENTE, position("EV-ORDER-2", 0), now, true)
        .await
        .unwrap();
    let (nav, iuv, amount) = options(&store, "EV-ORDER-2").await.remove(0);
    store
        .record_receipt(&receipt("R-ORDER", &nav, &iuv, amount, "OK"), now)
        .await
        .unwrap();
    let paid = store.position_events(ENTE, "EV-ORDER-2").await.unwrap();
    assert_eq!(kinds(&paid), ["PAID"]);
    assert!(paid[0].id > after[2].1, "{paid:?} after {after:?}");
    let feed = store.events_after(0, 100).await.unwrap();
    let feed_ids: Vec<i64> = feed.iter().map(|e| e.id).collect();
    let mut sorted = feed_ids.clone();
    sorted.sort();
    assert_eq!(feed_ids, sorted);
    assert_eq!(feed_ids.len(), 4);
}
