//! Reconciliation paths nothing else exercises, on every backend: an OPI
//! giornale di cassa written to version 1.7.1 of the schema, the reporting
//! outcomes 3 (revoked), 4 (stand-in, with a receipt) and 8 (stand-in,
//! without one), and sospesi matched to their flows by the bank transfer's
//! EndToEndId (camt.053, camt.054 and OPI) rather than by causale.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use incasso_app::reconcile;
use incasso_core::Cents;
use incasso_core::accertamento::{Accertamento, AccertamentoRef};
use incasso_core::ente::{Ente, StationLink};
use incasso_core::fdr::{FlowOutcome, FlowPayment, ReportingFlow};
use incasso_core::position::{DebtPosition, OptionStatus, PositionStatus};
use incasso_core::sample::{self, PositionSpec};
use incasso_recon::fdr;
use incasso_store::{ReceiptRecord, Store};
use incasso_testkit::recon::{self, Movement};
use incasso_testkit::{backends, fresh_database_url};
use std::collections::BTreeMap;

const ENTE: &str = "80000130585";
const IBAN: &str = "IT65B0200805364000104567891";
const CATEGORY: &str = "9/0101101IM/";

/// The Ente, its station (positions need one for their IUVs) and two
/// accertamenti.
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
                broker_id: "15376371009".into(),
                station_id: "15376371009_01".into(),
                segregation_code: 1,
            },
            now,
        )
        .await
        .unwrap();
    for code in ["ACC-A", "ACC-B"] {
        store
            .put_accertamento(
                ENTE,
                &Accertamento {
                    year: 2026,
                    code: code.into(),
                    description: code.into(),
                    chapter: "1010".into(),
                    article: None,
                    siope_code: None,
                    active: true,
                },
            )
            .await
            .unwrap();
    }
    store
}

fn acc(code: &str) -> AccertamentoRef {
    AccertamentoRef {
        year: 2026,
        code: code.into(),
    }
}

fn settlement_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, 2).unwrap()
}

fn line(iuv: &str, iur: &str, cents: i64, outcome: FlowOutcome) -> FlowPayment {
    recon::line(iuv, iur, cents, outcome, settlement_day())
}

/// A flow whose declared totals are what its lines move (revocations
/// taken out).
fn flow(id: &str, settlement_ref: &str, payments: Vec<FlowPayment>) -> ReportingFlow {
    recon::flow(ENTE, id, settlement_ref, payments)
}

/// An IUV no position of the Ente has.
fn unknown_iuv(n: u32) -> String {
    format!("09{n:015}")
}

// ------------------------------------------------------- OPI 1.7.1 journal

/// The Ente's giornale di cassa in the shape of OPI 1.7.1 (the testkit's).
fn journal_1_7_1(accounts: &[(&str, &[Movement<'_>])], execution: &str) -> String {
    recon::opi_journal_1_7_1(ENTE, accounts, execution)
}

const OPI_1_7_1: &str = "treasury/opi/OPI_GIORNALE_DI_CASSA_V_1_7_1.xsd";

/// Whether xmllint finds `document` valid against `xsd` (relative to the
/// testkit's spec folder). Some documents here must fail, which the
/// testkit's assertion cannot say without a panic.
fn xsd_accepts(xsd: &str, document: &str) -> bool {
    let spec = incasso_testkit::spec_dir().expect("crates/testkit/spec");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), document).unwrap();
    std::process::Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(spec.join(xsd))
        .arg(file.path())
        .output()
        .expect("xmllint is needed (Debian package libxml2-utils)")
        .status
        .success()
}

/// A 1.7.1 journal, taken in over HTTP as a treasury bank's file: it is
/// valid against the 1.7.1 schema, every field incasso uses is read from
/// it, and a reconciliation run matches its sospesi to their flows (by
/// causale and by TRN), leaves out its outgoing and reversed movements,
/// and reports the flow whose money was reversed.
#[tokio::test]
async fn an_opi_1_7_1_journal_is_read_and_its_sospesi_match_their_flows() {
    let a = flow(
        "2026-10-02PSPA-1",
        "TRN-A-0001",
        vec![
            line(&unknown_iuv(1), "IUR-A-1", 10_000, FlowOutcome::Paid),
            line(&unknown_iuv(2), "IUR-A-2", 5_000, FlowOutcome::Paid),
        ],
    );
    let b = flow(
        "2026-10-02PSPB-1",
        "TRN-B-0001",
        vec![line(&unknown_iuv(3), "IUR-B-1", 8_000, FlowOutcome::Paid)],
    );
    let c = flow(
        "2026-10-02PSPC-1",
        "TRN-C-0001",
        vec![line(&unknown_iuv(4), "IUR-C-1", 2_000, FlowOutcome::Paid)],
    );
    let main_account = [
        Movement {
            end_to_end_id: Some("E2E-OF-A"),
            ..Movement::sospeso(
                101,
                15_000,
                "ACCREDITO /PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPA-1 DA PSP",
            )
        },
        // No flow in the causale: found by its TRN.
        Movement {
            trn: Some("TRN-B-0001"),
            ..Movement::sospeso(102, 8_000, "BONIFICO SEPA PSP ESEMPIO")
        },
        // C's money, then reversed by the bank.
        Movement::sospeso(103, 2_000, "/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPC-1"),
        Movement {
            operation: "STORNATO",
            ..Movement::sospeso(103, 2_000, "STORNO ACCREDITO")
        },
    ];
    let other_account = [Movement {
        income: false,
        payer: "FORNITORE SRL",
        ..Movement::sospeso(7, 1_250, "PAGAMENTO FATTURA 12/2026")
    }];
    let accounts: [(&str, &[Movement<'_>]); 2] =
        [("0000001", &main_account), ("0000002", &other_account)];
    let doc = journal_1_7_1(&accounts, "SEPA CREDIT TRANSFER");
    incasso_testkit::assert_xsd_valid(OPI_1_7_1, &[&doc]);
    // The check above tells the versions apart: an instant transfer exists
    // only from 1.8 on.
    let instant = journal_1_7_1(&accounts, "SEPA INSTANT CREDIT TRANSFER");
    assert!(!xsd_accepts(OPI_1_7_1, &instant));
    assert!(xsd_accepts(
        "treasury/opi/OPI_GIORNALE_DI_CASSA_V_1_8.xsd",
        &instant
    ));
    // incasso's reader, on its own: every movement, each field in place.
    let read = incasso_recon::opi::parse(doc.as_bytes()).unwrap();
    assert_eq!(
        (read.ente.as_str(), read.year, read.page, read.pages),
        (ENTE, 2026, 1, 1)
    );
    assert_eq!(
        read.journal_id,
        "GDC-20261003BORGOESEMPIO01#001#001".to_string()
    );
    let ids: Vec<&str> = read
        .movements
        .iter()
        .map(|m| m.movement_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "2026/0000001/101/ESEGUITO",
            "2026/0000001/102/ESEGUITO",
            "2026/0000001/103/ESEGUITO",
            "2026/0000001/103/STORNATO",
            "2026/0000002/7/ESEGUITO",
        ]
    );

    incasso_pagopa::connector::install_crypto_provider();
    for backend in backends() {
        let url = fresh_database_url(backend).await;
        let store = store(&url).await;
        let (_, key) =
            incasso_app::keys::issue_key(&store, Some(ENTE), incasso_store::KeyScope::Ente, "t")
                .await
                .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!(
            "http://{}/api/v1/enti/{ENTE}",
            listener.local_addr().unwrap()
        );
        tokio::spawn(incasso_server::serve_with_listener(
            listener,
            store.clone(),
            std::future::pending(),
        ));
        let http = reqwest::Client::new();
        let post = |path: &str, body: Vec<u8>| {
            http.post(format!("{base}{path}"))
                .header("Ocp-Apim-Subscription-Key", &key)
                .body(body)
                .send()
        };
        for f in [&a, &b, &c] {
            let r = post("/flows", fdr::write(f).into_bytes()).await.unwrap();
            assert_eq!(r.status(), 201, "{backend:?}");
        }
        let r = post("/treasury", doc.clone().into_bytes()).await.unwrap();
        assert_eq!(r.status(), 201, "{backend:?}");
        let intake: serde_json::Value = r.json().await.unwrap();
        assert_eq!(intake["newMovements"], 5, "{backend:?}: {intake}");
        let r = post("/treasury", doc.clone().into_bytes()).await.unwrap();
        let intake: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            intake["newMovements"], 0,
            "{backend:?}: the same journal twice"
        );

        // Each field of the first sospeso, as stored.
        let m = store
            .movement(ENTE, "2026/0000001/101/ESEGUITO")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.amount, Cents(15_000));
        assert_eq!(m.document_number, "0000101");
        assert_eq!(
            m.booking_date,
            NaiveDate::from_ymd_opt(2026, 10, 3).unwrap()
        );
        assert_eq!(m.value_date, Some(settlement_day()));
        assert_eq!(m.payer.as_deref(), Some("PSP ESEMPIO SPA"));
        assert_eq!(m.end_to_end_id.as_deref(), Some("E2E-OF-A"));
        assert_eq!(m.trn, None);
        assert!(m.is_open_sospeso(), "{m:?}");
        let paid_out = store
            .movement(ENTE, "2026/0000002/7/ESEGUITO")
            .await
            .unwrap()
            .unwrap();
        assert!(!paid_out.is_open_sospeso(), "a MANDATO is no sospeso");

        let r = post("/reconciliation", Vec::new()).await.unwrap();
        assert_eq!(r.status(), 200, "{backend:?}");
        let summary: serde_json::Value = r.json().await.unwrap();
        assert_eq!(summary["flows"], 3, "{backend:?}: {summary}");
        // 101 and 102; 103 was reversed, 7 is outgoing.
        assert_eq!(summary["openSospesi"], 2, "{backend:?}: {summary}");
        assert_eq!(summary["matched"], 2, "{backend:?}: {summary}");
        assert_eq!(
            summary["anomalies"],
            serde_json::json!({"FLOW_WITHOUT_MOVEMENT": 1, "UNKNOWN_IUV": 3}),
            "{backend:?}: C's money was reversed; no flow's payments are positions here"
        );
        let matches: BTreeMap<String, (Option<String>, Option<String>, String)> = store
            .movement_matches(ENTE)
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.movement_id, (m.flow_id, m.method, m.status)))
            .collect();
        let matched = |flow: &str, method: &str| {
            (
                Some(flow.to_string()),
                Some(method.to_string()),
                "MATCHED".to_string(),
            )
        };
        assert_eq!(
            matches,
            BTreeMap::from([
                (
                    "2026/0000001/101/ESEGUITO".to_string(),
                    matched("2026-10-02PSPA-1", "FLOW_ID")
                ),
                (
                    "2026/0000001/102/ESEGUITO".to_string(),
                    matched("2026-10-02PSPB-1", "REFERENCE")
                ),
            ]),
            "{backend:?}"
        );
        let without = store
            .recon_anomalies(ENTE, Some("FLOW_WITHOUT_MOVEMENT"))
            .await
            .unwrap();
        assert_eq!(without[0].subject, "2026-10-02PSPC-1", "{backend:?}");
        assert_eq!(without[0].amount, Some(Cents(2_000)));
        // The sospeso's money, broken down through the flow it pays.
        let r = http
            .get(format!(
                "{base}/breakdown?movementId=2026/0000001/102/ESEGUITO"
            ))
            .header("Ocp-Apim-Subscription-Key", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{backend:?}");
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap(),
            serde_json::json!([{"year": null, "accertamento": null, "amount": 8_000}])
        );
        store.close().await;
    }
}

// ------------------------------------------------------ outcomes 3, 4, 8

/// Creates a published position of `cents` (with `installments`, its own
/// transfer booked to `accertamento`), due in thirty days.
async fn position(
    store: &Store,
    iupd: &str,
    cents: i64,
    installments: u32,
    accertamento: &str,
) -> DebtPosition {
    let now = Utc::now();
    let p = spec(
        iupd,
        cents,
        installments,
        accertamento,
        now + Duration::days(30),
    );
    store
        .create_position(ENTE, p, now, true)
        .await
        .unwrap()
        .position
}

/// A position with `switchToExpired`, created twenty days ago and due ten
/// days ago: expired since.
async fn expired_position(store: &Store, iupd: &str, cents: i64) -> DebtPosition {
    let now = Utc::now();
    let mut p = spec(iupd, cents, 0, "ACC-A", now - Duration::days(10));
    p.switch_to_expired = true;
    store
        .create_position(ENTE, p, now - Duration::days(20), true)
        .await
        .unwrap()
        .position
}

fn spec(
    iupd: &str,
    cents: i64,
    installments: u32,
    accertamento: &str,
    due: DateTime<Utc>,
) -> DebtPosition {
    sample::position(&PositionSpec {
        ente: ENTE,
        company_name: "Comune di Borgo Esempio",
        iupd: iupd.into(),
        debtor_index: 3,
        amount: Cents(cents),
        description: "TARI 2026".into(),
        category: CATEGORY,
        iban: IBAN,
        due_date: due,
        installments,
        second_beneficiary: None,
        quotas: vec![(acc(accertamento), 100)],
    })
}

fn iuv(p: &DebtPosition, option: usize) -> String {
    p.options[option].iuv.clone().unwrap()
}

fn nav(p: &DebtPosition, option: usize) -> String {
    p.options[option]
        .notice_number
        .clone()
        .unwrap()
        .as_str()
        .to_string()
}

/// The Node's receipt for the single option of `p`, paid in full.
async fn receipt(store: &Store, p: &DebtPosition, receipt_id: &str) {
    let o = &p.options[0];
    store
        .record_receipt(
            &ReceiptRecord {
                debtor: None,
                ente: ENTE.into(),
                receipt_id: receipt_id.into(),
                notice_number: nav(p, 0),
                iuv: iuv(p, 0),
                owner_ente: ENTE.into(),
                outcome: "OK".into(),
                amount: o.amount.0,
                fee: None,
                psp_id: "PSPEITMMXXX".into(),
                psp_name: "PSP Esempio".into(),
                channel_id: "PSPEITMMXXX_01".into(),
                payment_method: None,
                payment_date_time: Some(Utc::now() - Duration::days(1)),
                application_date: None,
                transfer_date: None,
                station_id: "15376371009_01".into(),
                primitive: "paSendRTV2".into(),
                stand_in: false,
                transfers_json: "[]".into(),
                raw_xml: "<x/>".into(),
            },
            Utc::now(),
        )
        .await
        .unwrap();
}

fn classes(s: &reconcile::Summary) -> BTreeMap<&str, usize> {
    s.lines_by_class
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect()
}

fn anomalies(s: &reconcile::Summary) -> BTreeMap<&str, usize> {
    s.anomalies.iter().map(|(k, v)| (k.as_str(), *v)).collect()
}

/// Each line of a flow, as (IUV, outcome, class).
async fn lines_of(store: &Store, flow_id: &str) -> Vec<(String, u8, &'static str)> {
    reconcile::classified_lines(store, ENTE, Some(flow_id), None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.iuv, l.outcome, l.class))
        .collect()
}

/// What a matching run does with each line of outcome 3, 4 and 8:
///
/// - 3 (revoked): the money counts negative in its flow (so the sospeso
///   of the net amount matches it, and the breakdown takes it back from
///   the accertamento), it is no second payment of the IUV, no amount
///   mismatch, and it leaves the position as its receipt and first flow
///   made it.
/// - 4 (stand-in, with a receipt): a line like outcome 0. With its receipt
///   it is reconciled; without one it is a payment without receipt, and
///   it never pays the position by itself.
/// - 8 (stand-in, without a receipt): no receipt will come, so the flow is
///   the proof of payment: the very option whose IUV it reports is paid
///   (on the day of the line's outcome) and reported, the position's other
///   options stay unpaid; no anomaly, unless the position can no longer be
///   paid (expired), which is reported.
#[tokio::test]
async fn flow_outcomes_3_4_and_8_in_a_matching_run() {
    for backend in backends() {
        let url = fresh_database_url(backend).await;
        let store = store(&url).await;
        let now = Utc::now();
        let p3 = position(&store, "OUT-3", 1_000, 0, "ACC-A").await;
        let pb = position(&store, "OUT-B", 2_500, 0, "ACC-B").await;
        let p4a = position(&store, "OUT-4A", 2_000, 0, "ACC-A").await;
        let p4b = position(&store, "OUT-4B", 2_000, 0, "ACC-A").await;
        // A single solution of 30.00 or two installments of 15.00.
        let p8 = position(&store, "OUT-8", 3_000, 2, "ACC-A").await;
        let p8s = position(&store, "OUT-8S", 1_200, 0, "ACC-A").await;
        let p8x = expired_position(&store, "OUT-8X", 1_200).await;
        for (p, id) in [(&p3, "R-3"), (&pb, "R-B"), (&p4a, "R-4A")] {
            receipt(&store, p, id).await;
        }
        let flows = [
            flow(
                "2026-10-02PSPA-1",
                "TRN-A",
                vec![line(&iuv(&p3, 0), "R-3", 1_000, FlowOutcome::Paid)],
            ),
            // A later flow revokes P3's payment and pays another: 15.00 net.
            flow(
                "2026-10-02PSPB-1",
                "TRN-B",
                vec![
                    line(&iuv(&p3, 0), "R-3", 1_000, FlowOutcome::Revoked),
                    line(&iuv(&pb, 0), "R-B", 2_500, FlowOutcome::Paid),
                ],
            ),
            flow(
                "2026-10-02PSPC-1",
                "TRN-C",
                vec![
                    line(&iuv(&p4a, 0), "R-4A", 2_000, FlowOutcome::StandIn),
                    line(&iuv(&p4b, 0), "R-4B", 2_000, FlowOutcome::StandIn),
                ],
            ),
            flow(
                "2026-10-02PSPD-1",
                "TRN-D",
                vec![
                    // P8's second installment.
                    line(
                        &iuv(&p8, 2),
                        "SI-8",
                        1_500,
                        FlowOutcome::StandInWithoutReceipt,
                    ),
                    line(
                        &iuv(&p8s, 0),
                        "SI-8S",
                        1_200,
                        FlowOutcome::StandInWithoutReceipt,
                    ),
                    line(
                        &iuv(&p8x, 0),
                        "SI-8X",
                        1_200,
                        FlowOutcome::StandInWithoutReceipt,
                    ),
                ],
            ),
        ];
        for f in &flows {
            reconcile::take_flow(&store, ENTE, fdr::write(f).as_bytes(), now)
                .await
                .unwrap();
        }
        let sospesi = [
            Movement::sospeso(1, 1_000, "/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPA-1"),
            Movement::sospeso(2, 1_500, "/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPB-1"),
            Movement::sospeso(3, 4_000, "/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPC-1"),
            Movement::sospeso(4, 3_900, "/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPD-1"),
        ];
        let doc = journal_1_7_1(&[("0000001", &sospesi)], "SEPA CREDIT TRANSFER");
        reconcile::take_treasury_file(&store, ENTE, doc.as_bytes(), now)
            .await
            .unwrap();
        let s = reconcile::reconcile(&store, ENTE, now).await.unwrap();
        // B's sospeso is its net 15.00: the revocation counts negative.
        assert_eq!((s.open_sospesi, s.matched), (4, 4), "{backend:?}: {s:?}");
        assert_eq!(
            anomalies(&s),
            BTreeMap::from([
                ("FLOW_PAYMENT_NOT_APPLIED", 1),
                ("PAYMENT_WITHOUT_RECEIPT", 1),
            ]),
            "{backend:?}: no DUPLICATE_PAYMENT for the revocation, no \
             PAYMENT_WITHOUT_RECEIPT for outcome 8: {s:?}"
        );
        assert_eq!(
            classes(&s),
            BTreeMap::from([("FLOW_WITHOUT_RECEIPT", 4), ("RECONCILED", 4)]),
            "{backend:?}"
        );
        assert_eq!(
            lines_of(&store, "2026-10-02PSPB-1").await,
            [
                (iuv(&p3, 0), 3, "RECONCILED"),
                (iuv(&pb, 0), 0, "RECONCILED")
            ],
            "{backend:?}"
        );
        assert_eq!(
            lines_of(&store, "2026-10-02PSPC-1").await,
            [
                (iuv(&p4a, 0), 4, "RECONCILED"),
                (iuv(&p4b, 0), 4, "FLOW_WITHOUT_RECEIPT")
            ],
            "{backend:?}"
        );
        assert_eq!(
            lines_of(&store, "2026-10-02PSPD-1").await,
            [
                (iuv(&p8, 2), 8, "FLOW_WITHOUT_RECEIPT"),
                (iuv(&p8s, 0), 8, "FLOW_WITHOUT_RECEIPT"),
                (iuv(&p8x, 0), 8, "FLOW_WITHOUT_RECEIPT"),
            ],
            "{backend:?}"
        );
        let without = store
            .recon_anomalies(ENTE, Some("PAYMENT_WITHOUT_RECEIPT"))
            .await
            .unwrap();
        assert_eq!(without.len(), 1);
        assert_eq!(without[0].subject, "2026-10-02PSPC-1", "{backend:?}");
        assert!(
            without[0].detail.contains(&iuv(&p4b, 0)),
            "{}",
            without[0].detail
        );
        assert_eq!(without[0].amount, Some(Cents(2_000)));
        let not_applied = store
            .recon_anomalies(ENTE, Some("FLOW_PAYMENT_NOT_APPLIED"))
            .await
            .unwrap();
        assert_eq!(not_applied.len(), 1);
        assert_eq!(not_applied[0].subject, nav(&p8x, 0), "{backend:?}");
        // The revocation takes its money back from P3's accertamento.
        let b = reconcile::breakdown(
            &store,
            ENTE,
            reconcile::BreakdownOf::Flow("2026-10-02PSPB-1"),
        )
        .await
        .unwrap();
        assert_eq!(
            b,
            BTreeMap::from([
                (Some(acc("ACC-A")), Cents(-1_000)),
                (Some(acc("ACC-B")), Cents(2_500)),
            ]),
            "{backend:?}"
        );

        let stored = |iupd: &'static str| {
            let store = store.clone();
            async move { store.get_position(ENTE, iupd).await.unwrap().position }
        };
        // 3: reported by A; B's revocation changes nothing.
        let p = stored("OUT-3").await;
        assert_eq!(p.status, PositionStatus::Reported, "{backend:?}");
        assert_eq!(p.options[0].status, OptionStatus::Reported);
        assert_eq!(stored("OUT-B").await.status, PositionStatus::Reported);
        // 4 without its receipt: still owed.
        let p = stored("OUT-4B").await;
        assert_eq!(p.status, PositionStatus::Valid, "{backend:?}");
        assert_eq!(p.options[0].status, OptionStatus::Unpaid);
        // 8: the second installment, and only it, paid by the flow on the
        // day of its outcome (noon in Rome), then reported.
        let paid_on = Utc.with_ymd_and_hms(2026, 10, 2, 10, 0, 0).unwrap();
        let p = stored("OUT-8").await;
        assert_eq!(p.status, PositionStatus::PartiallyPaid, "{backend:?}");
        let states: Vec<OptionStatus> = p.options.iter().map(|o| o.status).collect();
        assert_eq!(
            states,
            [
                OptionStatus::Unpaid,
                OptionStatus::Unpaid,
                OptionStatus::Reported
            ],
            "{backend:?}"
        );
        assert_eq!(p.options[2].payment_date, Some(paid_on));
        assert!(p.options[2].reporting_date.is_some());
        let p = stored("OUT-8S").await;
        assert_eq!(p.status, PositionStatus::Reported, "{backend:?}");
        assert_eq!(p.options[0].status, OptionStatus::Reported);
        assert_eq!(p.payment_date, Some(paid_on));
        // 8 for an expired position: not paid, reported above.
        let p = stored("OUT-8X").await;
        assert_eq!(p.options[0].status, OptionStatus::Unpaid, "{backend:?}");
        assert_eq!(p.effective_status(Utc::now()), PositionStatus::Expired);

        // A second run finds the same, and pays nothing twice.
        let again = reconcile::reconcile(&store, ENTE, now).await.unwrap();
        assert_eq!(again, s, "{backend:?}");
        let p = stored("OUT-8").await;
        assert_eq!(p.options[2].payment_date, Some(paid_on), "{backend:?}");
        assert_eq!(p.options[1].status, OptionStatus::Unpaid);
        store.close().await;
    }
}

/// Outcome 4 is a payment like outcome 0 (made by the Node in stand-in,
/// with its receipt): a flow that lists it reports the transfer, as GPD
/// (and GovPay, which handles only 8 and 9 apart) do.
#[tokio::test]
async fn a_stand_in_payment_with_its_receipt_is_reported_by_its_flow() {
    for backend in backends() {
        let url = fresh_database_url(backend).await;
        let store = store(&url).await;
        let now = Utc::now();
        let p = position(&store, "OUT-4R", 2_000, 0, "ACC-A").await;
        receipt(&store, &p, "R-4R").await;
        let f = flow(
            "2026-10-02PSPR-1",
            "TRN-R",
            vec![line(&iuv(&p, 0), "R-4R", 2_000, FlowOutcome::StandIn)],
        );
        reconcile::take_flow(&store, ENTE, fdr::write(&f).as_bytes(), now)
            .await
            .unwrap();
        reconcile::reconcile(&store, ENTE, now).await.unwrap();
        let stored = store.get_position(ENTE, "OUT-4R").await.unwrap().position;
        assert_eq!(
            stored.options[0].status,
            OptionStatus::Reported,
            "{backend:?}"
        );
        assert_eq!(stored.status, PositionStatus::Reported, "{backend:?}");
        store.close().await;
    }
}

// ------------------------------------------------------------ EndToEndId

/// A camt.054 credit notification of entries on the Ente's account:
/// (AcctSvcrRef, amount, TxId, EndToEndId, remittance text).
fn camt054(entries: &[(&str, &str, Option<&str>, &str, &str)]) -> String {
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.054.001.02\"><BkToCstmrDbtCdtNtfctn>\
         <GrpHdr><MsgId>NTF-20261003-1</MsgId><CreDtTm>2026-10-03T08:00:00+02:00</CreDtTm></GrpHdr>\
         <Ntfctn><Id>NTF-20261003-1</Id><CreDtTm>2026-10-03T08:00:00+02:00</CreDtTm>\
         <Acct><Id><IBAN>{IBAN}</IBAN></Id></Acct>"
    );
    for e in entries {
        x.push_str(&entry(e));
    }
    x.push_str("</Ntfctn></BkToCstmrDbtCdtNtfctn></Document>\n");
    x
}

/// A camt.053 statement of the same entries.
fn camt053(entries: &[(&str, &str, Option<&str>, &str, &str)]) -> String {
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.02\"><BkToCstmrStmt>\
         <GrpHdr><MsgId>STM-20261003-1</MsgId><CreDtTm>2026-10-03T20:00:00+02:00</CreDtTm></GrpHdr>\
         <Stmt><Id>STM-20261003-1</Id><CreDtTm>2026-10-03T20:00:00+02:00</CreDtTm>\
         <Acct><Id><IBAN>{IBAN}</IBAN></Id></Acct>\
         <Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy=\"EUR\">0.00</Amt>\
         <CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-10-03</Dt></Dt></Bal>"
    );
    for e in entries {
        x.push_str(&entry(e));
    }
    x.push_str("</Stmt></BkToCstmrStmt></Document>\n");
    x
}

fn entry(
    (reference, amount, tx_id, end_to_end_id, text): &(&str, &str, Option<&str>, &str, &str),
) -> String {
    let tx_id = tx_id
        .map(|t| format!("<TxId>{t}</TxId>"))
        .unwrap_or_default();
    format!(
        "<Ntry><Amt Ccy=\"EUR\">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>\
         <BookgDt><Dt>2026-10-03</Dt></BookgDt><ValDt><Dt>2026-10-03</Dt></ValDt>\
         <AcctSvcrRef>{reference}</AcctSvcrRef>\
         <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>\
         <NtryDtls><TxDtls><Refs><EndToEndId>{end_to_end_id}</EndToEndId>{tx_id}</Refs>\
         <RltdPties><Dbtr><Nm>PSP ESEMPIO SPA</Nm></Dbtr></RltdPties>\
         <RmtInf><Ustrd>{text}</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>"
    )
}

/// A PSP's bank transfer whose causale names no flow is matched by its
/// EndToEndId, the flow's `identificativoUnivocoRegolamento`, with an
/// equal amount: in a camt.054 notification (beside an unrelated TxId), in
/// a camt.053 statement, and in an OPI journal's `end_to_end_id`. The same
/// EndToEndId with another amount matches nothing, and is reported.
#[tokio::test]
async fn a_movement_matches_its_flow_by_end_to_end_id() {
    const E2E_A: &str = "E2E-20261002-PSPA-0001";
    const E2E_B: &str = "E2E-20261002-PSPB-0001";
    const E2E_C: &str = "E2E-20261002-PSPC-0001";
    const E2E_D: &str = "E2E-20261002-PSPD-0001";
    let flows = [
        flow(
            "2026-10-02PSPA-1",
            E2E_A,
            vec![
                line(&unknown_iuv(1), "IUR-A-1", 10_000, FlowOutcome::Paid),
                line(&unknown_iuv(2), "IUR-A-2", 2_345, FlowOutcome::Paid),
            ],
        ),
        flow(
            "2026-10-02PSPB-1",
            E2E_B,
            vec![line(&unknown_iuv(3), "IUR-B-1", 5_000, FlowOutcome::Paid)],
        ),
        flow(
            "2026-10-02PSPC-1",
            E2E_C,
            vec![line(&unknown_iuv(4), "IUR-C-1", 7_500, FlowOutcome::Paid)],
        ),
        flow(
            "2026-10-02PSPD-1",
            E2E_D,
            vec![line(&unknown_iuv(5), "IUR-D-1", 1_000, FlowOutcome::Paid)],
        ),
    ];
    let notification = camt054(&[
        (
            "NTF-0001",
            "123.45",
            Some("TX-NOT-A-FLOW"),
            E2E_A,
            "ACCREDITO CUMULATIVO PSP",
        ),
        // B's reference, a cent short.
        ("NTF-0002", "49.99", None, E2E_B, "ACCREDITO PSP"),
    ]);
    let statement = camt053(&[("STM-0001", "75.00", None, E2E_C, "GIROCONTO PSP")]);
    let journal = journal_1_7_1(
        &[(
            "0000001",
            &[Movement {
                end_to_end_id: Some(E2E_D),
                ..Movement::sospeso(301, 1_000, "ACCREDITO PAGOPA")
            }],
        )],
        "SEPA CREDIT TRANSFER",
    );
    incasso_testkit::assert_xsd_valid("treasury/camt/camt.054.001.02.xsd", &[&notification]);
    incasso_testkit::assert_xsd_valid("treasury/camt/camt.053.001.02.xsd", &[&statement]);
    incasso_testkit::assert_xsd_valid(OPI_1_7_1, &[&journal]);
    for backend in backends() {
        let url = fresh_database_url(backend).await;
        let store = store(&url).await;
        let now = Utc::now();
        for f in &flows {
            reconcile::take_flow(&store, ENTE, fdr::write(f).as_bytes(), now)
                .await
                .unwrap();
        }
        for doc in [&notification, &statement, &journal] {
            reconcile::take_treasury_file(&store, ENTE, doc.as_bytes(), now)
                .await
                .unwrap();
        }
        let ntf = format!("{IBAN}/NTF-0001/ESEGUITO");
        let m = store.movement(ENTE, &ntf).await.unwrap().unwrap();
        assert_eq!(
            (m.end_to_end_id.as_deref(), m.trn.as_deref()),
            (Some(E2E_A), Some("TX-NOT-A-FLOW")),
            "{backend:?}"
        );
        assert_eq!(m.causale, "ACCREDITO CUMULATIVO PSP");
        let s = reconcile::reconcile(&store, ENTE, now).await.unwrap();
        assert_eq!((s.open_sospesi, s.matched), (4, 3), "{backend:?}: {s:?}");
        assert_eq!(
            anomalies(&s),
            BTreeMap::from([
                ("FLOW_WITHOUT_MOVEMENT", 1),
                ("MOVEMENT_WITHOUT_FLOW", 1),
                ("UNKNOWN_IUV", 4),
            ]),
            "{backend:?}"
        );
        let matches: BTreeMap<String, (Option<String>, Option<String>, String)> = store
            .movement_matches(ENTE)
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.movement_id, (m.flow_id, m.method, m.status)))
            .collect();
        let by_reference = |flow: &str| {
            (
                Some(flow.to_string()),
                Some("REFERENCE".to_string()),
                "MATCHED".to_string(),
            )
        };
        assert_eq!(
            matches,
            BTreeMap::from([
                (ntf.clone(), by_reference("2026-10-02PSPA-1")),
                (
                    format!("{IBAN}/NTF-0002/ESEGUITO"),
                    (None, None, "UNMATCHED".to_string())
                ),
                (
                    format!("{IBAN}/STM-0001/ESEGUITO"),
                    by_reference("2026-10-02PSPC-1")
                ),
                (
                    "2026/0000001/301/ESEGUITO".to_string(),
                    by_reference("2026-10-02PSPD-1")
                ),
            ]),
            "{backend:?}"
        );
        let unmatched = store
            .recon_anomalies(ENTE, Some("FLOW_WITHOUT_MOVEMENT"))
            .await
            .unwrap();
        assert_eq!(unmatched[0].subject, "2026-10-02PSPB-1", "{backend:?}");
        store.close().await;
    }
}
