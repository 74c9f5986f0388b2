//! Reconciliation end to end on every backend: flows and a treasury journal
//! taken in (each once, each whole), sospesi matched to flows, and every
//! kind of anomaly reported.

use chrono::{NaiveDate, TimeZone, Utc};
use incasso_app::reconcile::{self, ReconError};
use incasso_core::Cents;
use incasso_core::ente::Ente;
use incasso_core::fdr::{FlowOutcome, FlowPayment, PartyIdKind, ReportingFlow};
use incasso_recon::fdr;
use incasso_store::{FlowIntake, Store};
use incasso_testkit::{Backend, backends, fresh_database_url};
use std::collections::BTreeMap;

const ENTE: &str = "80000130585";
const IBAN: &str = "IT65B0200805364000104567891";

async fn store(url: &str) -> Store {
    let store = Store::connect(url).await.unwrap();
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
            Utc::now(),
        )
        .await
        .unwrap();
    store
}

/// A flow of `lines` payments of `cents` each, sent at `hour`.
fn flow(id: &str, trn: &str, lines: &[i64], hour: u32) -> ReportingFlow {
    let day = NaiveDate::from_ymd_opt(2026, 10, 2).unwrap();
    let payments: Vec<FlowPayment> = lines
        .iter()
        .enumerate()
        .map(|(i, c)| FlowPayment {
            // Each flow its own IUVs: the letter after "PSP" in its id.
            iuv: format!("01{:03}{:012}", id.as_bytes()[13], i + 1),
            iur: format!("{id}-{i}"),
            transfer_index: Some(1),
            amount: Cents(*c),
            outcome: FlowOutcome::Paid,
            outcome_date: day,
        })
        .collect();
    ReportingFlow {
        flow_id: id.into(),
        flow_date_time: Utc.with_ymd_and_hms(2026, 10, 3, hour, 0, 0).unwrap(),
        settlement_ref: trn.into(),
        settlement_date: day,
        psp_id: "PSPEITMMXXX".into(),
        psp_id_kind: PartyIdKind::Bic,
        psp_name: Some("PSP Esempio".into()),
        bic: None,
        ente: ENTE.into(),
        ente_name: None,
        declared_count: payments.len() as u64,
        declared_total: Cents(lines.iter().sum()),
        payments,
        revision: None,
    }
}

struct Sospeso<'a> {
    number: u32,
    cents: i64,
    causale: &'a str,
    trn: Option<&'a str>,
    operation: &'a str,
}

fn sample_journal() -> String {
    let dir = incasso_testkit::spec_dir().expect("the spec folder (../shared/spec) is needed");
    std::fs::read_to_string(dir.join("treasury/opi/samples/OPI_GIORNALE_DI_CASSA_V_1_8.VALID.xml"))
        .unwrap()
}

/// The spec's valid OPI journal, made the Ente's, with these sospesi on its
/// second account in place of the sample's.
fn journal(sospesi: &[Sospeso<'_>]) -> String {
    let sample = sample_journal().replace(
        "<codice_fiscale_ente>06144260707",
        &format!("<codice_fiscale_ente>{ENTE}"),
    );
    let second = sample
        .match_indices("<informazioni_conto_evidenza>")
        .nth(1)
        .unwrap()
        .0;
    let first_move = second + sample[second..].find("<movimento_conto_evidenza>").unwrap();
    let end_tag = "</movimento_conto_evidenza>";
    let last_move_end = second + sample[second..].rfind(end_tag).unwrap() + end_tag.len();
    let template = {
        let end = first_move + sample[first_move..].find(end_tag).unwrap() + end_tag.len();
        &sample[first_move..end]
    };
    let blocks: String = sospesi
        .iter()
        .map(|s| {
            let mut b = template
                .replace("<numero_movimento>0000205<", &format!("<numero_movimento>{:07}<", s.number))
                .replace("<numero_documento>0064422<", &format!("<numero_documento>{:07}<", s.number))
                .replace(">ESEGUITO</tipo_operazione>", &format!(">{}</tipo_operazione>", s.operation))
                .replace(
                    "<importo>5015.87<",
                    &format!("<importo>{}.{:02}<", s.cents / 100, s.cents % 100),
                );
            let causale_start = b.find("<causale>").unwrap();
            let causale_end = b.find("</causale>").unwrap();
            b.replace_range(
                causale_start..causale_end,
                &format!("<causale>{}", incasso_xml::escape(s.causale)),
            );
            if let Some(trn) = s.trn {
                b = b.replace(
                    "<tipo_esecuzione>CASSA</tipo_esecuzione>",
                    &format!(
                        "<tipo_esecuzione>CASSA</tipo_esecuzione><codice_riferimento_operazione>{trn}</codice_riferimento_operazione>"
                    ),
                );
            }
            b
        })
        .collect();
    format!(
        "{}{blocks}{}",
        &sample[..first_move],
        &sample[last_move_end..]
    )
}

fn assert_valid_journal(document: &str) {
    incasso_testkit::assert_xsd_valid("treasury/opi/OPI_GIORNALE_DI_CASSA_V_1_8.xsd", &[document]);
}

fn assert_valid_order(document: &str) {
    incasso_testkit::assert_xsd_valid(
        "treasury/opi/OPI_FLUSSO_ORDINATIVI_V_1_7_1.xsd",
        &[document],
    );
}

fn counts(s: &reconcile::Summary) -> BTreeMap<&str, usize> {
    s.anomalies.iter().map(|(k, v)| (k.as_str(), *v)).collect()
}

#[tokio::test]
async fn flows_and_a_journal_reconcile_with_every_anomaly_reported() {
    for backend in backends() {
        let url = fresh_database_url(backend).await;
        let store = store(&url).await;
        let now = Utc::now();
        let a = flow("2026-10-02PSPA-1", "TRN-A", &[10_000, 5_000], 6);
        let b = flow("2026-10-02PSPB-1", "TRN-B", &[8_000], 6);
        let mut c = flow("2026-10-02PSPC-1", "TRN-C", &[3_000, 4_000], 6);
        c.declared_total = Cents(7_100);
        let d = flow("2026-10-02PSPD-1", "TRN-D", &[2_000], 6);
        for f in [&a, &b, &c, &d] {
            let intake = reconcile::take_flow(&store, ENTE, fdr::write(f).as_bytes(), now)
                .await
                .unwrap();
            assert_eq!(intake, FlowIntake::Stored, "{backend:?}");
        }
        // The same version again changes nothing; a later one replaces it;
        // an earlier one is kept aside.
        let again = reconcile::take_flow(&store, ENTE, fdr::write(&a).as_bytes(), now).await;
        assert_eq!(again.unwrap(), FlowIntake::AlreadyKnown);
        let b_later = flow("2026-10-02PSPB-1", "TRN-B", &[8_000, 1_000], 9);
        let r = reconcile::take_flow(&store, ENTE, fdr::write(&b_later).as_bytes(), now).await;
        assert_eq!(r.unwrap(), FlowIntake::Replaced);
        let b_earlier = flow("2026-10-02PSPB-1", "TRN-B", &[1], 3);
        let r = reconcile::take_flow(&store, ENTE, fdr::write(&b_earlier).as_bytes(), now).await;
        assert_eq!(r.unwrap(), FlowIntake::Outdated);
        let current = store.current_flows(ENTE).await.unwrap();
        assert_eq!(current.len(), 4, "{backend:?}");
        let b_now = current.iter().find(|f| f.flow_id == b.flow_id).unwrap();
        assert_eq!((b_now.lines, b_now.lines_total), (2, Cents(9_000)));

        let doc = journal(&[
            // A, by its causale, mangled as banks do.
            Sospeso {
                number: 101,
                cents: 15_000,
                causale: "BONIFICO /PUR/LGPE- RIVERSAMENTO/URI/2026-10- 02PSPA-1",
                trn: None,
                operation: "ESEGUITO",
            },
            // B (its later version), by TRN only.
            Sospeso {
                number: 102,
                cents: 9_000,
                causale: "ACCREDITO PSP ESEMPIO",
                trn: Some("TRN-B"),
                operation: "ESEGUITO",
            },
            // C's declared total, which its lines contradict.
            Sospeso {
                number: 103,
                cents: 7_100,
                causale: "/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPC-1",
                trn: None,
                operation: "ESEGUITO",
            },
            // A again.
            Sospeso {
                number: 104,
                cents: 15_000,
                causale: "/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPA-1",
                trn: None,
                operation: "ESEGUITO",
            },
            // Money nobody reported.
            Sospeso {
                number: 105,
                cents: 777,
                causale: "VERSAMENTO CONTANTI",
                trn: None,
                operation: "ESEGUITO",
            },
            // D's money, then reversed: D stays without a movement.
            Sospeso {
                number: 106,
                cents: 2_000,
                causale: "/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPD-1",
                trn: None,
                operation: "ESEGUITO",
            },
            Sospeso {
                number: 106,
                cents: 2_000,
                causale: "STORNO",
                trn: None,
                operation: "STORNATO",
            },
            // A sospeso that came before its flow.
            Sospeso {
                number: 107,
                cents: 4_200,
                causale: "/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPE-1",
                trn: None,
                operation: "ESEGUITO",
            },
        ]);
        assert_valid_journal(&doc);
        let new = reconcile::take_treasury_file(&store, ENTE, doc.as_bytes(), now)
            .await
            .unwrap();
        // The sample's two outgoing movements come along.
        assert_eq!(new, 10, "{backend:?}");
        let again = reconcile::take_treasury_file(&store, ENTE, doc.as_bytes(), now)
            .await
            .unwrap();
        assert_eq!(
            again, 0,
            "{backend:?}: the same journal twice changes nothing"
        );

        let summary = reconcile::reconcile(&store, ENTE, now).await.unwrap();
        assert_eq!(summary.flows, 4);
        // 101, 102, 104 match; 103 mismatches; 105 and 107 match nothing.
        assert_eq!(summary.open_sospesi, 6, "{backend:?}");
        assert_eq!(summary.matched, 3, "{backend:?}");
        assert_eq!(
            counts(&summary),
            BTreeMap::from([
                ("AMOUNT_MISMATCH", 1),
                ("DUPLICATE_MOVEMENT", 1),
                ("FLOW_INCONSISTENT", 1),
                // C (mismatched) and D (reversed).
                ("FLOW_WITHOUT_MOVEMENT", 2),
                ("MOVEMENT_WITHOUT_FLOW", 2),
                // incasso has no positions for these flows' payments.
                ("UNKNOWN_IUV", 4),
            ]),
            "{backend:?}"
        );
        let matches = store.movement_matches(ENTE).await.unwrap();
        let of = |n: u32| {
            matches
                .iter()
                .find(|m| m.movement_id.ends_with(&format!("/{n:07}/ESEGUITO")))
                .cloned()
                .unwrap()
        };
        assert_eq!(of(101).flow_id.as_deref(), Some("2026-10-02PSPA-1"));
        assert_eq!(of(102).method.as_deref(), Some("REFERENCE"));
        assert_eq!(of(103).status, "AMOUNT_MISMATCH");
        assert_eq!(of(107).status, "UNMATCHED");
        let mismatch = store
            .recon_anomalies(ENTE, Some("AMOUNT_MISMATCH"))
            .await
            .unwrap();
        assert_eq!(mismatch.len(), 1);
        assert_eq!(mismatch[0].amount, Some(Cents(100)));
        assert!(
            mismatch[0].detail.contains("70,00"),
            "{}",
            mismatch[0].detail
        );

        // The flow of 107 arrives: the next run matches it.
        let e = flow("2026-10-02PSPE-1", "TRN-E", &[4_200], 6);
        reconcile::take_flow(&store, ENTE, fdr::write(&e).as_bytes(), now)
            .await
            .unwrap();
        let summary = reconcile::reconcile(&store, ENTE, now).await.unwrap();
        assert_eq!(summary.matched, 4, "{backend:?}");
        assert_eq!(counts(&summary).get("MOVEMENT_WITHOUT_FLOW"), Some(&1));
        store.close().await;
    }
}

#[tokio::test]
async fn bad_files_are_refused_whole_and_write_nothing() {
    for backend in backends() {
        let url = fresh_database_url(backend).await;
        let store = store(&url).await;
        let now = Utc::now();
        let good = fdr::write(&flow("2026-10-02PSPA-1", "TRN-A", &[100, 200, 300], 6));
        // Truncated: refused, with where.
        let e = reconcile::take_flow(&store, ENTE, &good.as_bytes()[..good.len() - 40], now)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "FDR_INVALID", "{backend:?}");
        // A bad amount on the third line: nothing of the flow is stored.
        let bad = good.replacen(
            "<singoloImportoPagato>3.00<",
            "<singoloImportoPagato>3,00<",
            1,
        );
        let e = reconcile::take_flow(&store, ENTE, bad.as_bytes(), now)
            .await
            .unwrap_err();
        match &e {
            ReconError::Flow(f) => assert!(f.location.contains("datiSingoliPagamenti[3]"), "{f}"),
            other => panic!("{other}"),
        }
        assert!(
            store.current_flows(ENTE).await.unwrap().is_empty(),
            "{backend:?}"
        );
        // Another Ente's flow, and a flow for an Ente incasso does not serve.
        let mut other = flow("2026-10-02PSPX-1", "TRN-X", &[100], 6);
        other.ente = "97000000022".into();
        let e = reconcile::take_flow(&store, ENTE, fdr::write(&other).as_bytes(), now).await;
        assert_eq!(e.unwrap_err().code(), "OTHER_ENTE");
        let e =
            reconcile::take_flow(&store, "97000000022", fdr::write(&other).as_bytes(), now).await;
        assert_eq!(e.unwrap_err().code(), "UNKNOWN_ENTE");
        // A journal broken in its last movement: none of its movements stay.
        let doc = journal(&[
            Sospeso {
                number: 1,
                cents: 100,
                causale: "X",
                trn: None,
                operation: "ESEGUITO",
            },
            Sospeso {
                number: 2,
                cents: 200,
                causale: "Y",
                trn: None,
                operation: "ESEGUITO",
            },
        ]);
        let broken = doc.replacen("<importo>2.00<", "<importo>2.0.0<", 1);
        let e = reconcile::take_treasury_file(&store, ENTE, broken.as_bytes(), now)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "TREASURY_INVALID");
        assert!(
            store.movements(ENTE).await.unwrap().is_empty(),
            "{backend:?}"
        );
        // camt money on an account that is not the Ente's is reported.
        let dir = incasso_testkit::spec_dir().unwrap();
        let camt = std::fs::read_to_string(
            dir.join("treasury/camt/samples/camt053.v2.multi.statement.xml"),
        )
        .unwrap();
        reconcile::take_treasury_file(&store, ENTE, camt.as_bytes(), now)
            .await
            .unwrap();
        let summary = reconcile::reconcile(&store, ENTE, now).await.unwrap();
        assert_eq!(
            counts(&summary).get("ACCOUNT_NOT_OF_ENTE"),
            Some(&1),
            "{backend:?}"
        );
        assert_eq!(summary.open_sospesi, 0);
        store.close().await;
    }
}

/// A flow, its sospeso and an IUV broken down over accertamenti: by the
/// transfers' quotas, by the service's default where a transfer has none,
/// and "attributed to none" for a payment incasso does not know.
#[tokio::test]
async fn a_flow_and_its_sospeso_are_broken_down_by_accertamento() {
    use incasso_app::reconcile::BreakdownOf;
    use incasso_core::accertamento::{Accertamento, AccertamentoRef};
    use incasso_core::catalogue::Service;
    use incasso_core::ente::StationLink;
    use incasso_core::sample::{self, PositionSpec};
    const CATEGORY: &str = "9/0101101IM/";
    let acc = |code: &str| AccertamentoRef {
        year: 2026,
        code: code.into(),
    };
    for backend in backends() {
        let url = fresh_database_url(backend).await;
        let store = store(&url).await;
        let now = Utc::now();
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
        for (code, siope) in [
            ("ACC-A", "3010200"),
            ("ACC-B", "3010300"),
            ("ACC-C", "3010100"),
        ] {
            store
                .put_accertamento(
                    ENTE,
                    &Accertamento {
                        year: 2026,
                        code: code.into(),
                        description: code.into(),
                        chapter: "1010".into(),
                        article: None,
                        siope_code: Some(siope.into()),
                        active: true,
                    },
                )
                .await
                .unwrap();
        }
        store
            .put_service(
                ENTE,
                &Service {
                    code: "TARI".into(),
                    name: "TARI".into(),
                    office_code: None,
                    taxonomy_code: CATEGORY.into(),
                    default_accertamento: Some(acc("ACC-C")),
                    iban: None,
                    fixed_amount: None,
                    spontaneous: false,
                    pagopa_service_id: None,
                    active: true,
                },
            )
            .await
            .unwrap();
        let mut iuvs = Vec::new();
        for (key, cents, quotas) in [
            ("Q-1", 10_000, vec![(acc("ACC-A"), 70), (acc("ACC-B"), 30)]),
            ("Q-2", 5_000, vec![]),
        ] {
            let p = sample::position(&PositionSpec {
                ente: ENTE,
                company_name: "Comune di Borgo Esempio",
                iupd: key.into(),
                debtor_index: 1,
                amount: Cents(cents),
                description: "TARI 2026".into(),
                category: CATEGORY,
                iban: IBAN,
                due_date: now + chrono::Duration::days(30),
                installments: 0,
                second_beneficiary: None,
                quotas,
            });
            let stored = store.create_position(ENTE, p, now, true).await.unwrap();
            iuvs.push(stored.position.options[0].iuv.clone().unwrap());
        }
        let mut f = flow("2026-10-02PSPQ-1", "TRN-Q", &[10_000, 5_000, 777], 6);
        f.payments[0].iuv = iuvs[0].clone();
        f.payments[1].iuv = iuvs[1].clone();
        reconcile::take_flow(&store, ENTE, fdr::write(&f).as_bytes(), now)
            .await
            .unwrap();
        let by_flow = reconcile::breakdown(&store, ENTE, BreakdownOf::Flow(&f.flow_id))
            .await
            .unwrap();
        assert_eq!(
            by_flow,
            BTreeMap::from([
                (Some(acc("ACC-A")), Cents(7_000)),
                (Some(acc("ACC-B")), Cents(3_000)),
                (Some(acc("ACC-C")), Cents(5_000)),
                (None, Cents(777)),
            ]),
            "{backend:?}"
        );
        let by_iuv = reconcile::breakdown(&store, ENTE, BreakdownOf::Iuv(&iuvs[0]))
            .await
            .unwrap();
        assert_eq!(by_iuv.values().map(|c| c.0).sum::<i64>(), 10_000);
        // The sospeso: not matched yet, then matched and broken down alike.
        let doc = journal(&[Sospeso {
            number: 201,
            cents: 15_777,
            causale: "/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPQ-1",
            trn: None,
            operation: "ESEGUITO",
        }]);
        reconcile::take_treasury_file(&store, ENTE, doc.as_bytes(), now)
            .await
            .unwrap();
        // The sample journal's year is 2022.
        let movement = "2022/0000005/0000201/ESEGUITO";
        let e = reconcile::breakdown(&store, ENTE, BreakdownOf::Movement(movement)).await;
        assert_eq!(e.unwrap_err().code(), "MOVEMENT_NOT_MATCHED");
        let summary = reconcile::reconcile(&store, ENTE, now).await.unwrap();
        assert_eq!(summary.matched, 1, "{backend:?}");
        let by_movement = reconcile::breakdown(&store, ENTE, BreakdownOf::Movement(movement))
            .await
            .unwrap();
        assert_eq!(by_movement, by_flow, "{backend:?}");

        // The reversale proposal: refused without treasury settings, with
        // bad ones, and while part of the money is attributed to nothing.
        let e = reconcile::reversale_for(&store, ENTE, movement, 1, now).await;
        assert_eq!(e.unwrap_err().code(), "TREASURY_SETTINGS_MISSING");
        let mut settings = reconcile::TreasurySettings {
            bank_abi: "03069".into(),
            ipa_office_code: "UFAB12".into(),
            siope_ente_code: "012345678".into(),
            ente_channel: "A2A-12345678".into(),
            bank_channel: "A2A-87654321".into(),
            bank_ente_code: "1234567".into(),
        };
        settings.bank_abi = "3069".into();
        let e = reconcile::put_treasury_settings(&store, ENTE, &settings, now).await;
        assert_eq!(e.unwrap_err().code(), "REVERSALE_INVALID");
        settings.bank_abi = "03069".into();
        reconcile::put_treasury_settings(&store, ENTE, &settings, now)
            .await
            .unwrap();
        let e = reconcile::reversale_for(&store, ENTE, movement, 1, now).await;
        assert_eq!(
            e.unwrap_err().code(),
            "UNATTRIBUTED",
            "{backend:?}: 7,77 belongs to no accertamento"
        );
        // A flow whose money is all attributed, and its sospeso.
        let mut r = flow("2026-10-02PSPR-1", "TRN-R", &[10_000], 6);
        r.payments[0].iuv = iuvs[0].clone();
        reconcile::take_flow(&store, ENTE, fdr::write(&r).as_bytes(), now)
            .await
            .unwrap();
        let doc = journal(&[Sospeso {
            number: 202,
            cents: 10_000,
            causale: "/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPR-1",
            trn: None,
            operation: "ESEGUITO",
        }]);
        reconcile::take_treasury_file(&store, ENTE, doc.as_bytes(), now)
            .await
            .unwrap();
        reconcile::reconcile(&store, ENTE, now).await.unwrap();
        let xml = reconcile::reversale_for(&store, ENTE, "2022/0000005/0000202/ESEGUITO", 7, now)
            .await
            .unwrap();
        assert_valid_order(&xml);
        let root = incasso_xml::parse(xml.as_bytes(), incasso_xml::Limits::default()).unwrap();
        let rev = root.child("reversale").unwrap();
        assert_eq!(rev.text_of("numero_reversale"), Some("7"));
        assert_eq!(rev.text_of("importo_reversale"), Some("100.00"));
        let v = rev.child("informazioni_versante").unwrap();
        assert_eq!(
            v.child("sospeso").unwrap().text_of("numero_provvisorio"),
            Some("202")
        );
        // ACC-A and ACC-B share chapter 1010: one budget line of 100.00,
        // and both accertamenti listed with their parts.
        let bilanci: Vec<_> = rev.children_named("bilancio").collect();
        assert_eq!(bilanci.len(), 1, "{backend:?}");
        assert_eq!(bilanci[0].text_of("importo_bilancio"), Some("100.00"));
        // Classified by the accertamenti's SIOPE codes.
        let siope: Vec<(&str, &str)> = rev
            .child("informazioni_versante")
            .unwrap()
            .children_named("classificazione")
            .map(|c| {
                (
                    c.text_of("codice_cge").unwrap(),
                    c.text_of("importo").unwrap(),
                )
            })
            .collect();
        assert_eq!(
            siope,
            [("3010200", "70.00"), ("3010300", "30.00")],
            "{backend:?}"
        );
        let accs = v.child("dati_a_disposizione_ente_versante").unwrap();
        let parts: Vec<(String, String)> = accs
            .children_named("accertamento")
            .map(|a| {
                (
                    a.text_of("codice").unwrap().to_string(),
                    a.text_of("importo").unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            parts,
            [
                ("ACC-A".to_string(), "70.00".to_string()),
                ("ACC-B".into(), "30.00".into())
            ]
        );
        // The same proposal for the accounting application, through the
        // BUS's export: one row per accertamento, each sospeso once per
        // consumer.
        let layout = incasso_bus::builtin::get("regolarizzazioni-csv")
            .unwrap()
            .unwrap();
        assert!(!layout.loads());
        let (csv, n) = incasso_app::export::export(&store, ENTE, &layout, "ragioneria")
            .await
            .unwrap();
        let matched = store
            .movement_matches(ENTE)
            .await
            .unwrap()
            .iter()
            .filter(|m| m.status == "MATCHED")
            .count();
        assert_eq!(n, matched, "{backend:?}: every matched sospeso");
        let text = String::from_utf8(csv).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "numero_sospeso;data_sospeso;importo_sospeso;conto;flusso;anno_accertamento;\
             accertamento;capitolo;articolo;codice_siope;importo;causale"
        );
        let rows: Vec<Vec<&str>> = lines[1..]
            .iter()
            .map(|l| l.split(';').collect::<Vec<_>>())
            .filter(|r| r[0] == "0000202")
            .collect();
        assert_eq!(rows.len(), 2, "{text}");
        let summary: Vec<(&str, &str, &str, &str, &str)> = rows
            .iter()
            .map(|r| (r[0], r[2], r[6], r[9], r[10]))
            .collect();
        assert_eq!(
            summary,
            [
                ("0000202", "100.00", "ACC-A", "3010200", "70.00"),
                ("0000202", "100.00", "ACC-B", "3010300", "30.00")
            ],
            "{text}"
        );
        assert_eq!(rows[0][4], "2026-10-02PSPR-1");
        let (_, again) = incasso_app::export::export(&store, ENTE, &layout, "ragioneria")
            .await
            .unwrap();
        assert_eq!(again, 0, "given once to each consumer");
        let (_, other) = incasso_app::export::export(&store, ENTE, &layout, "controllo")
            .await
            .unwrap();
        assert_eq!(other, matched);
        // It loads nothing.
        let open = || -> std::io::Result<Box<dyn std::io::Read + Send>> {
            Ok(Box::new(std::io::Cursor::new(b"a;b\n1;2\n".to_vec())))
        };
        let file = incasso_app::supply::SupplyFile {
            ente: ENTE,
            layout: &layout,
            default_service: None,
            file_name: "x.csv",
            open: &open,
        };
        let refused = incasso_app::supply::prepare(&store, &file).await;
        assert!(
            matches!(refused, Err(incasso_app::supply::LoadError::ExportOnly(_))),
            "{backend:?}"
        );
        store.close().await;
    }
}

/// The DigitFIN API: flows and a journal posted, a run, the flows, their
/// payments, a breakdown and the anomalies read back; bad input answered
/// with its code; another Ente's key refused.
#[tokio::test]
async fn the_reconciliation_api() {
    incasso_pagopa::connector::install_crypto_provider();
    for backend in backends() {
        let url = fresh_database_url(backend).await;
        let store = store(&url).await;
        let (_, key) =
            incasso_app::keys::issue_key(&store, Some(ENTE), incasso_store::KeyScope::Ente, "test")
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
        let get = |path: String| {
            http.get(format!("{base}{path}"))
                .header("Ocp-Apim-Subscription-Key", &key)
                .send()
        };
        // On SQLite, a flow or a journal answered as taken in was flushed
        // to the disk first (`Store::durable`); PostgreSQL's COMMIT is.
        let flushed_since = |before: u64| store.wal_flushes() - before;
        let flushes = store.wal_flushes();
        let a = flow("2026-10-02PSPA-1", "TRN-A", &[10_000, 5_000], 6);
        let r = post("/flows", fdr::write(&a).into_bytes()).await.unwrap();
        assert_eq!(r.status(), 201, "{backend:?}");
        assert_eq!(
            flushed_since(flushes) > 0,
            backend == Backend::Sqlite,
            "{backend:?}"
        );
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["intake"], "STORED");
        let r = post("/flows", fdr::write(&a).into_bytes()).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap()["intake"],
            "ALREADY_KNOWN"
        );
        // A broken flow: 400 with its code and where it breaks.
        let broken = fdr::write(&a).replacen(
            "<singoloImportoPagato>100.00<",
            "<singoloImportoPagato>100<",
            1,
        );
        let r = post("/flows", broken.into_bytes()).await.unwrap();
        assert_eq!(r.status(), 400);
        let problem: serde_json::Value = r.json().await.unwrap();
        assert_eq!(problem["code"], "FDR_INVALID", "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("datiSingoliPagamenti[1]")
        );
        let doc = journal(&[Sospeso {
            number: 1,
            cents: 15_000,
            causale: "/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPA-1",
            trn: None,
            operation: "ESEGUITO",
        }]);
        let flushes = store.wal_flushes();
        let r = post("/treasury", doc.into_bytes()).await.unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(
            flushed_since(flushes) > 0,
            backend == Backend::Sqlite,
            "{backend:?}"
        );
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap()["newMovements"],
            3
        );
        let r = post("/reconciliation", Vec::new()).await.unwrap();
        assert_eq!(r.status(), 200);
        let summary: serde_json::Value = r.json().await.unwrap();
        assert_eq!(summary["matched"], 1, "{summary}");
        let flows: serde_json::Value = get("/flows".into()).await.unwrap().json().await.unwrap();
        assert_eq!(flows[0]["flowId"], "2026-10-02PSPA-1");
        assert_eq!(flows[0]["linesTotal"], 15_000);
        let payments: serde_json::Value = get(format!("/flows/{}/payments", a.flow_id))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(payments.as_array().unwrap().len(), 2);
        assert_eq!(payments[1]["amount"], 5_000);
        let r = get("/flows/NOPE/payments".into()).await.unwrap();
        assert_eq!(r.status(), 404);
        // The payments are unknown to incasso: all of it attributed to none.
        let b: serde_json::Value =
            get("/breakdown?movementId=2022/0000005/0000001/ESEGUITO".into())
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        assert_eq!(
            b,
            serde_json::json!([{"year": null, "accertamento": null, "amount": 15_000}])
        );
        let r = get("/breakdown?flowId=x&iuv=y".into()).await.unwrap();
        assert_eq!(r.status(), 400);
        // The reversale: its settings first, then refused while the money
        // is attributed to no accertamento.
        let r = http
            .put(format!("{base}/treasury-settings"))
            .header("Ocp-Apim-Subscription-Key", &key)
            .json(&serde_json::json!({
                "bankAbi": "03069", "ipaOfficeCode": "UFAB12", "siopeEnteCode": "012345678",
                "enteChannel": "A2A-12345678", "bankChannel": "A2A-87654321", "bankEnteCode": "1"
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{backend:?}");
        let r = get("/reversale?movementId=2022/0000005/0000001/ESEGUITO".into())
            .await
            .unwrap();
        assert_eq!(r.status(), 409);
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap()["code"],
            "UNATTRIBUTED"
        );
        let r = get("/reversale?movementId=NOPE".into()).await.unwrap();
        assert_eq!(r.status(), 404);
        let all: serde_json::Value = get("/reconciliation/lines".into())
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(all.as_array().unwrap().len() > 1, "{all}");
        let r = get("/reconciliation/lines?limit=1".into()).await.unwrap();
        let cursor = r.headers()["x-next-cursor"].to_str().unwrap().to_string();
        let lines: serde_json::Value = r.json().await.unwrap();
        assert_eq!(lines.as_array().unwrap().len(), 1, "{lines}");
        assert!(
            lines[0]["class"].is_string() && lines[0]["iuv"].is_string(),
            "{lines}"
        );
        // The next page goes on where this one stopped.
        let rest: serde_json::Value = get(format!("/reconciliation/lines?cursor={cursor}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut walked = lines.as_array().unwrap().clone();
        walked.extend(rest.as_array().unwrap().iter().cloned());
        assert_eq!(serde_json::Value::Array(walked), all, "{backend:?}");
        let bad = get("/reconciliation/lines?class=SOMETHING".into())
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);
        let anomalies: serde_json::Value = get("/anomalies?code=MOVEMENT_WITHOUT_FLOW".into())
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(anomalies.as_array().unwrap().len(), 0, "{anomalies}");
        // An accounting application's own reconciliation: idempotent on its
        // id, with an exact amount check.
        let put = |id: &str, body: serde_json::Value| {
            http.put(format!("{base}/reconciliations/{id}"))
                .header("Ocp-Apim-Subscription-Key", &key)
                .json(&body)
                .send()
        };
        let body = serde_json::json!({
            "causale": "/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPA-1",
            "amount": 15_000, "date": "2026-10-03"
        });
        let r = put("r-1", body.clone()).await.unwrap();
        assert_eq!(r.status(), 200, "{backend:?}");
        let answer: serde_json::Value = r.json().await.unwrap();
        assert_eq!(answer["flowId"], "2026-10-02PSPA-1");
        assert_eq!(answer["breakdown"][0]["amount"], 15_000);
        assert_eq!(put("r-1", body.clone()).await.unwrap().status(), 200);
        let mut other = body.clone();
        other["amount"] = serde_json::json!(15_001);
        let r = put("r-1", other.clone()).await.unwrap();
        assert_eq!(r.status(), 409);
        let r = put("r-2", other).await.unwrap();
        assert_eq!(r.status(), 422);
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap()["code"],
            "AMOUNT_MISMATCH"
        );
        let r = put(
            "r-3",
            serde_json::json!({"causale": "GIROCONTO", "amount": 100, "date": "2026-10-03"}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 404);
        // Another Ente's key reads nothing here.
        store
            .create_ente(
                &Ente {
                    fiscal_code: "97000000022".into(),
                    name: "Altro".into(),
                    ipa_code: None,
                    iban: None,
                    postal_iban: None,
                    cbill_code: None,
                    email: None,
                },
                Utc::now(),
            )
            .await
            .unwrap();
        let (_, other) = incasso_app::keys::issue_key(
            &store,
            Some("97000000022"),
            incasso_store::KeyScope::Ente,
            "x",
        )
        .await
        .unwrap();
        let r = http
            .get(format!("{base}/flows"))
            .header("Ocp-Apim-Subscription-Key", &other)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
    }
}

/// Each flow line classified by its four sources, and the line-level
/// anomalies: a payment without its receipt (but not for outcome 9), an
/// amount other than the position's, the same payment in two flows.
#[tokio::test]
async fn flow_lines_are_classified_by_their_four_sources() {
    use incasso_core::ente::StationLink;
    use incasso_core::sample::{self, PositionSpec};
    use incasso_store::ReceiptRecord;
    for backend in backends() {
        let url = fresh_database_url(backend).await;
        let store = store(&url).await;
        let now = Utc::now();
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
        // Four positions of 10.00; receipts for the first two and the last.
        let mut options = Vec::new();
        for k in 0..4 {
            let p = sample::position(&PositionSpec {
                ente: ENTE,
                company_name: "Comune di Borgo Esempio",
                iupd: format!("L-{k}"),
                debtor_index: k,
                amount: Cents(1_000),
                description: "TARI".into(),
                category: "9/0101101IM/",
                iban: IBAN,
                due_date: now + chrono::Duration::days(30),
                installments: 0,
                second_beneficiary: None,
                quotas: vec![],
            });
            let stored = store.create_position(ENTE, p, now, true).await.unwrap();
            let o = stored.position.options[0].clone();
            options.push((
                o.iuv.unwrap(),
                o.notice_number.unwrap().as_str().to_string(),
            ));
        }
        for k in [0usize, 1, 3] {
            let (iuv, nav) = &options[k];
            store
                .record_receipt(
                    &ReceiptRecord {
                        debtor: None,
                        ente: ENTE.into(),
                        receipt_id: format!("R-{k}"),
                        notice_number: nav.clone(),
                        iuv: iuv.clone(),
                        owner_ente: ENTE.into(),
                        outcome: "OK".into(),
                        amount: 1_000,
                        fee: None,
                        psp_id: "PSP".into(),
                        psp_name: "PSP".into(),
                        channel_id: "C".into(),
                        payment_method: None,
                        payment_date_time: Some(now),
                        application_date: None,
                        transfer_date: None,
                        station_id: "15376371009_01".into(),
                        primitive: "paSendRTV2".into(),
                        stand_in: false,
                        transfers_json: "[]".into(),
                        raw_xml: "<x/>".into(),
                    },
                    now,
                )
                .await
                .unwrap();
        }
        // Flow A: position 0 (receipt), 1 (receipt, reported for 9.99),
        // 2 (no receipt, outcome 0), an unknown IUV.
        // A line's IUR is its receipt's id.
        let mut a = flow("2026-10-02PSPA-1", "TRN-A", &[1_000, 999, 1_000, 500], 6);
        a.payments[0].iuv = options[0].0.clone();
        a.payments[0].iur = "R-0".into();
        a.payments[1].iuv = options[1].0.clone();
        a.payments[1].iur = "R-1".into();
        a.payments[2].iuv = options[2].0.clone();
        // Flow B: position 2 again, outcome 9 (paid without a receipt),
        // and position 3 (receipt); its sospeso never comes.
        let mut b = flow("2026-10-02PSPB-1", "TRN-B", &[1_000, 1_000], 6);
        b.payments[0].iuv = options[2].0.clone();
        b.payments[0].outcome = FlowOutcome::PaidWithoutReceipt;
        b.payments[1].iuv = options[3].0.clone();
        b.payments[1].iur = "R-3".into();
        for f in [&a, &b] {
            reconcile::take_flow(&store, ENTE, fdr::write(f).as_bytes(), now)
                .await
                .unwrap();
        }
        let doc = journal(&[Sospeso {
            number: 1,
            cents: 3_499,
            causale: "/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPA-1",
            trn: None,
            operation: "ESEGUITO",
        }]);
        reconcile::take_treasury_file(&store, ENTE, doc.as_bytes(), now)
            .await
            .unwrap();
        let s = reconcile::reconcile(&store, ENTE, now).await.unwrap();
        let classes: BTreeMap<&str, usize> = s
            .lines_by_class
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        assert_eq!(
            classes,
            BTreeMap::from([
                // A's lines 0 and 1: position, receipt, flow and treasury.
                ("RECONCILED", 2),
                // A's line 2 (outcome 0) and B's line 0 (outcome 9).
                ("FLOW_WITHOUT_RECEIPT", 2),
                ("UNKNOWN_DEBT", 1),
                // B's line 1: its sospeso has not come.
                ("AWAITING_TREASURY", 1),
            ]),
            "{backend:?}"
        );
        // Line by line, the same classes, with their sources.
        let all = reconcile::classified_lines(&store, ENTE, None, None, 100)
            .await
            .unwrap();
        let mut by_class: BTreeMap<&str, usize> = BTreeMap::new();
        for l in &all {
            *by_class.entry(l.class).or_insert(0) += 1;
        }
        assert_eq!(by_class, classes, "{backend:?}");
        let awaiting =
            reconcile::classified_lines(&store, ENTE, None, Some("AWAITING_TREASURY"), 100)
                .await
                .unwrap();
        assert_eq!(awaiting.len(), 1);
        assert!(awaiting[0].position && awaiting[0].receipt && !awaiting[0].treasury);
        let first = reconcile::classified_lines(&store, ENTE, None, None, 1)
            .await
            .unwrap();
        assert_eq!(first.len(), 1, "the limit holds");
        // A line at a time, each after the last: every line once, in order,
        // across the flows.
        let mut walked = first.clone();
        loop {
            let last = walked.last().unwrap();
            let after = Some((last.flow_id.as_str(), last.line));
            let next = reconcile::classified_lines_after(&store, ENTE, None, None, after, 1)
                .await
                .unwrap();
            match next.into_iter().next() {
                Some(l) => walked.push(l),
                None => break,
            }
        }
        assert_eq!(walked, all, "{backend:?}");
        let of = |code: &str| s.anomalies.get(code).copied().unwrap_or(0);
        assert_eq!(
            of("PAYMENT_WITHOUT_RECEIPT"),
            1,
            "{backend:?}: only A's outcome-0 line"
        );
        assert_eq!(of("UNKNOWN_IUV"), 1);
        assert_eq!(of("LINE_AMOUNT_MISMATCH"), 1);
        assert_eq!(
            of("DUPLICATE_PAYMENT"),
            1,
            "{backend:?}: position 2 in A and in B"
        );
        let mismatch = store
            .recon_anomalies(ENTE, Some("LINE_AMOUNT_MISMATCH"))
            .await
            .unwrap();
        assert!(
            mismatch[0]
                .detail
                .contains("atteso 10,00, rendicontato 9,99"),
            "{}",
            mismatch[0].detail
        );
        // A PSP that charged position 0 twice reports a second IUR: the
        // Ente holds no receipt with that id, whatever it holds for the IUV.
        let mut c = flow("2026-10-02PSPC-1", "TRN-C", &[1_000], 6);
        c.payments[0].iuv = options[0].0.clone();
        c.payments[0].iur = "R-0-BIS".into();
        reconcile::take_flow(&store, ENTE, fdr::write(&c).as_bytes(), now)
            .await
            .unwrap();
        let s = reconcile::reconcile(&store, ENTE, now).await.unwrap();
        let second = reconcile::classified_lines(&store, ENTE, Some(&c.flow_id), None, 10)
            .await
            .unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].class, "FLOW_WITHOUT_RECEIPT", "{backend:?}");
        assert!(second[0].position && !second[0].receipt);
        let without = store
            .recon_anomalies(ENTE, Some("PAYMENT_WITHOUT_RECEIPT"))
            .await
            .unwrap();
        assert!(
            without.iter().any(|a| a.subject == c.flow_id),
            "{backend:?}: {without:?} {s:?}"
        );
        store.close().await;
    }
}

/// A bank that sends neither OPI nor camt: its CSV export of the account,
/// read through the Digit BUS's `tesoreria-csv` treasury layout. Sospesi
/// match their flows, a STORNATO undoes its movement, the same file twice
/// changes nothing, and a bad row refuses the file whole, naming the row.
#[tokio::test]
async fn a_bank_csv_is_taken_in_through_a_treasury_layout() {
    let layout = incasso_bus::builtin::get("tesoreria-csv").unwrap().unwrap();
    let header =
        "numero;data_operazione;data_valuta;importo;segno;stato;conto;causale;ordinante;trn";
    let csv = format!(
        "{header}\n\
         301;03/10/2026;03/10/2026;150,00;E;ESEGUITO;;/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPA-1;PSP A;\n\
         302;03/10/2026;;80,00;E;ESEGUITO;;ACCREDITO;PSP B;TRN-B\n\
         303;03/10/2026;;1.234,56;E;ESEGUITO;;BONIFICO PRIVATO;ROSSI;\n\
         303;04/10/2026;;1.234,56;E;STORNATO;;BONIFICO PRIVATO;ROSSI;\n\
         304;04/10/2026;;12,00;U;ESEGUITO;;COMMISSIONI;;\n"
    );
    for backend in backends() {
        let url = fresh_database_url(backend).await;
        let store = store(&url).await;
        let now = Utc::now();
        for f in [
            flow("2026-10-02PSPA-1", "TRN-A", &[10_000, 5_000], 6),
            flow("2026-10-02PSPB-1", "TRN-B", &[8_000], 6),
        ] {
            reconcile::take_flow(&store, ENTE, fdr::write(&f).as_bytes(), now)
                .await
                .unwrap();
        }
        let take = |layout: incasso_bus::Layout, text: String| {
            let store = &store;
            async move {
                reconcile::take_treasury_with_layout(store, ENTE, &layout, text.into_bytes(), now)
                    .await
            }
        };
        assert_eq!(
            take(layout.clone(), csv.clone()).await.unwrap(),
            5,
            "{backend:?}"
        );
        assert_eq!(
            take(layout.clone(), csv.clone()).await.unwrap(),
            0,
            "{backend:?}: the same file twice changes nothing"
        );
        let s = reconcile::reconcile(&store, ENTE, now).await.unwrap();
        // 301 by its causale, 302 by its TRN; 303 was reversed; 304 is an
        // outgoing payment, no sospeso.
        assert_eq!((s.open_sospesi, s.matched), (2, 2), "{backend:?}: {s:?}");
        // (The lines' IUVs are no positions here: only the money matters.)
        assert_eq!(
            s.anomalies.keys().collect::<Vec<_>>(),
            ["UNKNOWN_IUV"],
            "{backend:?}: {s:?}"
        );
        let m = store
            .movement(ENTE, "2026/TESORERIA/301/ESEGUITO")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.amount, Cents(15_000));
        assert_eq!(m.value_date, NaiveDate::from_ymd_opt(2026, 10, 3));
        assert_eq!(m.payer.as_deref(), Some("PSP A"));

        // A bad amount on the file's third line: nothing of it is taken.
        let bad = format!(
            "{header}\n\
             401;05/10/2026;;10,00;E;ESEGUITO;;UNO;;\n\
             402;05/10/2026;;dieci;E;ESEGUITO;;DUE;;\n"
        );
        let e = take(layout.clone(), bad).await.unwrap_err();
        assert_eq!(e.code(), "TREASURY_INVALID");
        let ReconError::Treasury(t) = &e else {
            panic!("{e}")
        };
        assert_eq!(t.location, "riga 3, campo importo", "{e}");
        assert!(t.message.contains("dieci"), "{e}");
        assert!(
            store
                .movement(ENTE, "2026/TESORERIA/401/ESEGUITO")
                .await
                .unwrap()
                .is_none(),
            "{backend:?}: the good row of a refused file is not taken"
        );
        // A positions layout is no treasury layout.
        let positions = incasso_bus::builtin::get("incasso-csv").unwrap().unwrap();
        let e = take(positions, csv.clone()).await.unwrap_err();
        assert!(e.to_string().contains("non descrive movimenti"), "{e}");
        store.close().await;
    }
}
