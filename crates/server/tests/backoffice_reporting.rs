//! The back office's Reporting area over HTTP, on both databases:
//! receipts searched, shown and exported; a reporting flow uploaded and its
//! breakdown into accertamenti; a treasury journal uploaded and reconciled,
//! every anomaly class listed; a sospeso regularized by hand (a wrong total
//! refused with nothing written, the right one tied, kept by a later run,
//! its reversale valid against the OPI schema, then undone); and the rights:
//! another Ente's operator sees and changes nothing, an accountant reads
//! and cannot write, an office operator sees their offices' receipts only.
//! Then every page of the area in Chromium, where axe-core finds no WCAG
//! 2.1 A/AA violation (skipped without Chromium, as the browser tests are).

use crate::common::app;
use crate::common::backoffice;
use crate::common::browser;

use app::gpd::{ENTE, IBAN, OTHER_ENTE};
use app::spawn_app;
use backoffice::{Clerk, clerk, rights};
use chrono::{NaiveDate, TimeZone, Utc};
use incasso_core::Cents;
use incasso_core::accertamento::{Accertamento, AccertamentoRef};
use incasso_core::access::{Access, Area, Role};
use incasso_core::fdr::{FlowOutcome, FlowPayment, PartyIdKind, ReportingFlow};
use incasso_core::sample::{self, PositionSpec};
use incasso_recon::fdr;
use incasso_store::{ReceiptRecord, Store};
use incasso_testkit::backends;
use reqwest::StatusCode;

const CATEGORY: &str = "9/0101101IM/";
/// The sample journal's year, and the account its second block is of.
const SOSPESO_102: &str = "2022/0000005/0000102/ESEGUITO";
const SOSPESO_101: &str = "2022/0000005/0000101/ESEGUITO";
const SOSPESO_103: &str = "2022/0000005/0000103/ESEGUITO";

fn acc(code: &str) -> AccertamentoRef {
    AccertamentoRef {
        year: 2026,
        code: code.into(),
    }
}

/// A flow paying `lines` (IUV, cents), as reconcile.rs builds them.
fn flow(id: &str, trn: &str, lines: &[(&str, i64)]) -> ReportingFlow {
    let day = NaiveDate::from_ymd_opt(2026, 10, 2).unwrap();
    let payments: Vec<FlowPayment> = lines
        .iter()
        .map(|(iuv, c)| FlowPayment {
            iuv: iuv.to_string(),
            iur: format!("R-{iuv}"),
            transfer_index: Some(1),
            amount: Cents(*c),
            outcome: FlowOutcome::Paid,
            outcome_date: day,
        })
        .collect();
    ReportingFlow {
        flow_id: id.into(),
        flow_date_time: Utc.with_ymd_and_hms(2026, 10, 3, 6, 0, 0).unwrap(),
        settlement_ref: trn.into(),
        settlement_date: day,
        psp_id: "PSPEITMMXXX".into(),
        psp_id_kind: PartyIdKind::Bic,
        psp_name: Some("PSP Esempio".into()),
        bic: None,
        ente: ENTE.into(),
        ente_name: None,
        declared_count: payments.len() as u64,
        declared_total: Cents(lines.iter().map(|(_, c)| c).sum()),
        payments,
        revision: None,
    }
}

/// The spec's valid OPI journal (the sample reconcile.rs uses), made the
/// Ente's, with these sospesi (number, cents, causale) on its second
/// account in place of the sample's.
fn journal(sospesi: &[(u32, i64, &str)]) -> String {
    let dir = incasso_testkit::spec_dir().expect("the spec folder is needed");
    let sample = std::fs::read_to_string(
        dir.join("treasury/opi/samples/OPI_GIORNALE_DI_CASSA_V_1_8.VALID.xml"),
    )
    .unwrap()
    .replace(
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
        .map(|(number, cents, causale)| {
            let mut b = template
                .replace(
                    "<numero_movimento>0000205<",
                    &format!("<numero_movimento>{number:07}<"),
                )
                .replace(
                    "<numero_documento>0064422<",
                    &format!("<numero_documento>{number:07}<"),
                )
                .replace(
                    "<importo>5015.87<",
                    &format!("<importo>{}.{:02}<", cents / 100, cents % 100),
                );
            let start = b.find("<causale>").unwrap();
            let end = b.find("</causale>").unwrap();
            b.replace_range(
                start..end,
                &format!("<causale>{}", incasso_xml::escape(causale)),
            );
            b
        })
        .collect();
    format!(
        "{}{blocks}{}",
        &sample[..first_move],
        &sample[last_move_end..]
    )
}

/// Accertamenti, three positions (the first of office UT) and their
/// receipts: (iuv, notice number) of each.
async fn seed(store: &Store) -> Vec<(String, String)> {
    let now = Utc::now();
    // The first position's office, which it names.
    store
        .put_office(
            ENTE,
            &incasso_core::ente::Office {
                code: "UT".into(),
                name: "Ufficio tributi".into(),
                email: None,
            },
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
                    description: format!("Entrate {code}"),
                    chapter: "1010".into(),
                    article: None,
                    siope_code: Some("3010200".into()),
                    active: true,
                },
            )
            .await
            .unwrap();
    }
    let mut out = Vec::new();
    for (i, (key, cents, quotas)) in [
        ("P-1", 10_000, vec![(acc("ACC-A"), 70), (acc("ACC-B"), 30)]),
        ("P-2", 5_000, vec![(acc("ACC-A"), 100)]),
        ("P-3", 7_777, vec![(acc("ACC-B"), 100)]),
    ]
    .into_iter()
    .enumerate()
    {
        let mut p = sample::position(&PositionSpec {
            ente: ENTE,
            company_name: "Comune di prova",
            iupd: key.into(),
            debtor_index: i as u64 + 1,
            amount: Cents(cents),
            description: "TARI 2026".into(),
            category: CATEGORY,
            iban: IBAN,
            due_date: now + chrono::Duration::days(30),
            installments: 0,
            second_beneficiary: None,
            quotas,
        });
        if i == 0 {
            p.office_name = Some("UT".into());
        }
        let debtor = p.debtor.fiscal_code.clone();
        let stored = store.create_position(ENTE, p, now, true).await.unwrap();
        let option = &stored.position.options[0];
        let (iuv, nav) = (
            option.iuv.clone().unwrap(),
            option.notice_number.as_ref().unwrap().to_string(),
        );
        store
            .record_receipt(
                &ReceiptRecord {
                    ente: ENTE.into(),
                    receipt_id: format!("R-{iuv}"),
                    notice_number: nav.clone(),
                    iuv: iuv.clone(),
                    owner_ente: ENTE.into(),
                    outcome: "OK".into(),
                    amount: cents,
                    fee: Some(150),
                    psp_id: "PSPEITMMXXX".into(),
                    psp_name: "PSP Esempio".into(),
                    channel_id: "PSPEITMMXXX_01".into(),
                    payment_method: Some("creditCard".into()),
                    payment_date_time: Some(
                        Utc.with_ymd_and_hms(2026, 10, 1 + i as u32, 9, 30, 0).unwrap(),
                    ),
                    application_date: Some("2026-10-01".into()),
                    transfer_date: None,
                    station_id: "80000130585_01".into(),
                    primitive: "paSendRTV2".into(),
                    stand_in: false,
                    transfers_json: format!(
                        "[{{\"idTransfer\":1,\"amount\":{cents},\"fiscalCodePA\":\"{ENTE}\",\"iban\":\"{IBAN}\",\"remittanceInformation\":\"TARI 2026\",\"transferCategory\":\"{CATEGORY}\"}}]"
                    ),
                    raw_xml: format!("<paSendRTV2Req><receiptId>R-{iuv}</receiptId></paSendRTV2Req>"),
                    debtor: Some(debtor),
                },
                now,
            )
            .await
            .unwrap();
        out.push((iuv, nav));
    }
    out
}

fn assert_status(a: &backoffice::Answer, status: StatusCode, what: &str) {
    assert_eq!(a.status, status, "{what}: {}", a.text());
}

/// The treasury settings a reversale needs, as the API sets them.
async fn treasury_settings(store: &Store) {
    incasso_app::reconcile::put_treasury_settings(
        store,
        ENTE,
        &incasso_app::reconcile::TreasurySettings {
            bank_abi: "03069".into(),
            ipa_office_code: "UFAB12".into(),
            siope_ente_code: "012345678".into(),
            ente_channel: "A2A-12345678".into(),
            bank_channel: "A2A-87654321".into(),
            bank_ente_code: "1234567".into(),
        },
        Utc::now(),
    )
    .await
    .unwrap();
}

async fn upload_flow(c: &Clerk, f: &ReportingFlow) -> backoffice::Answer {
    c.post_file(
        "/backoffice/flussi/carica",
        &[],
        "file",
        &format!("{}.xml", f.flow_id),
        fdr::write(f).into_bytes(),
    )
    .await
}

#[tokio::test]
async fn receipts_flows_treasury_and_manual_regularization() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let store = app.store.clone();
        let base = &app.server.base;
        let options = seed(&store).await;
        treasury_settings(&store).await;
        let admin = clerk(
            &store,
            base,
            "admin.reporting",
            rights(Role::EnteAdmin, Some(ENTE), &[], &[]),
        )
        .await;

        // ------------------------------------------------ receipts
        let list = admin.get("/backoffice/ricevute").await;
        assert_status(&list, StatusCode::OK, "receipts");
        let html = list.text();
        for (iuv, _) in &options {
            assert!(html.contains(iuv.as_str()), "{backend:?}: {iuv} listed");
        }
        assert!(html.contains("77,77"), "amounts in Italian");
        // By IUV, notice number, debtor, payment date.
        let by_iuv = admin
            .get(&format!("/backoffice/ricevute?iuv={}", options[1].0))
            .await
            .text();
        assert!(by_iuv.contains(&options[1].0) && !by_iuv.contains(&options[0].0));
        let by_nav = admin
            .get(&format!("/backoffice/ricevute?avviso={}", options[2].1))
            .await
            .text();
        assert!(by_nav.contains(&options[2].0) && !by_nav.contains(&options[1].0));
        let debtor = store
            .get_position(ENTE, "P-1")
            .await
            .unwrap()
            .position
            .debtor
            .fiscal_code;
        let by_debtor = admin
            .get(&format!(
                "/backoffice/ricevute?debitore={}",
                debtor.to_lowercase()
            ))
            .await
            .text();
        assert!(by_debtor.contains(&options[0].0) && !by_debtor.contains(&options[1].0));
        // Paid on 1, 2 and 3 October: from the 2nd to the 2nd is one.
        let by_day = admin
            .get("/backoffice/ricevute?dal=02%2F10%2F2026&al=2026-10-02")
            .await
            .text();
        assert!(
            by_day.contains(&options[1].0)
                && !by_day.contains(&options[0].0)
                && !by_day.contains(&options[2].0),
            "{backend:?}"
        );
        let bad = admin.get("/backoffice/ricevute?dal=31%2F02%2F2026").await;
        assert_status(&bad, StatusCode::BAD_REQUEST, "a bad date");
        assert!(bad.text().contains("Pagata dal"), "the field is named");
        // Sorted by amount, ascending: 50,00 before 77,77 before 100,00.
        let sorted = admin
            .get("/backoffice/ricevute?ordina=importo&verso=asc")
            .await
            .text();
        let at = |s: &str| sorted.find(s).unwrap();
        assert!(at("50,00") < at("77,77") && at("77,77") < at("100,00"));
        // Exported as CSV and XLSX.
        let csv = admin
            .get("/backoffice/ricevute?ordina=importo&verso=asc&formato=csv")
            .await;
        assert_status(&csv, StatusCode::OK, "CSV");
        assert!(csv.content_type.starts_with("text/csv"));
        let text = csv.text();
        assert!(
            text.starts_with("\u{feff}Ricevuta;IUV;Numero avviso"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(text.lines().nth(1).unwrap().contains(";50,00;"), "{text}");
        let xlsx = admin.get("/backoffice/ricevute?formato=xlsx").await;
        assert_status(&xlsx, StatusCode::OK, "XLSX");
        assert!(xlsx.body.starts_with(b"PK"), "an XLSX is a ZIP");
        // A receipt's page and its XML.
        let id = format!("R-{}", options[0].0);
        let detail = admin.get(&format!("/backoffice/ricevute/{id}")).await;
        assert_status(&detail, StatusCode::OK, "receipt page");
        let html = detail.text();
        assert!(html.contains("P-1") && html.contains("100,00 €") && html.contains("1,50 €"));
        assert!(html.contains(IBAN), "its transfers");
        let xml = admin.get(&format!("/backoffice/ricevute/{id}/xml")).await;
        assert_status(&xml, StatusCode::OK, "receipt XML");
        assert!(xml.content_type.starts_with("application/xml"));
        assert_eq!(
            xml.text(),
            format!("<paSendRTV2Req><receiptId>{id}</receiptId></paSendRTV2Req>")
        );
        assert_status(
            &admin.get("/backoffice/ricevute/R-NESSUNA").await,
            StatusCode::NOT_FOUND,
            "an unknown receipt",
        );

        // ------------------------------------------------ flows
        let iuv = |i: usize| options[i].0.as_str();
        let f_a = flow("2026-10-02PSPA-1", "TRN-A", &[(iuv(0), 10_000)]);
        let f_b = flow("2026-10-02PSPB-1", "TRN-B", &[(iuv(1), 5_000)]);
        let f_c = flow("2026-10-02PSPC-1", "TRN-C", &[(iuv(2), 7_777)]);
        let f_d = flow("2026-10-02PSPD-1", "TRN-D", &[("01999000000000099", 2_000)]);
        let up = upload_flow(&admin, &f_a).await;
        assert_status(&up, StatusCode::SEE_OTHER, "a flow uploaded");
        assert_eq!(
            up.location.as_deref(),
            Some("/backoffice/flussi/2026-10-02PSPA-1?caricato=nuovo")
        );
        let again = upload_flow(&admin, &f_a).await;
        assert!(again.location.unwrap().ends_with("caricato=gia-presente"));
        for f in [&f_b, &f_c, &f_d] {
            assert_status(&upload_flow(&admin, f).await, StatusCode::SEE_OTHER, "flow");
        }
        let bad = admin
            .post_file(
                "/backoffice/flussi/carica",
                &[],
                "file",
                "x.xml",
                b"<x/>".to_vec(),
            )
            .await;
        assert_status(&bad, StatusCode::BAD_REQUEST, "not a flow");
        assert!(bad.text().contains("File: il flusso non è stato acquisito"));
        let forged = admin
            .post_raw("/backoffice/flussi/carica", &[("csrf", "x")])
            .await;
        assert!(forged.status.is_client_error(), "no multipart, no CSRF");
        let flows = admin.get("/backoffice/flussi").await;
        assert_status(&flows, StatusCode::OK, "flows");
        let html = flows.text();
        for f in [&f_a, &f_b, &f_c, &f_d] {
            assert!(
                html.contains(&f.flow_id),
                "{backend:?}: {} listed",
                f.flow_id
            );
        }
        let csv = admin
            .get("/backoffice/flussi?ordina=importo&formato=csv")
            .await;
        assert_eq!(csv.text().lines().count(), 5, "{}", csv.text());
        let xlsx = admin.get("/backoffice/flussi?formato=xlsx").await;
        assert!(xlsx.body.starts_with(b"PK"));
        // A flow's page: its breakdown into accertamenti, its lines.
        let page = admin
            .get("/backoffice/flussi/2026-10-02PSPA-1?caricato=nuovo")
            .await;
        assert_status(&page, StatusCode::OK, "a flow's page");
        let html = page.text();
        assert!(html.contains("Flusso acquisito."));
        assert!(
            html.contains("2026/ACC-A") && html.contains("70,00"),
            "{html}"
        );
        assert!(html.contains("2026/ACC-B") && html.contains("30,00"));
        assert!(html.contains(iuv(0)), "its payment");
        let unknown = admin
            .get("/backoffice/flussi/2026-10-02PSPD-1")
            .await
            .text();
        assert!(
            unknown.contains("Non attribuito"),
            "money of an unknown IUV"
        );
        let lines_csv = admin
            .get("/backoffice/flussi/2026-10-02PSPA-1?formato=csv")
            .await
            .text();
        assert!(lines_csv.contains(iuv(0)) && lines_csv.contains("100,00"));

        // ------------------------------------------------ treasury
        let doc = journal(&[
            (101, 10_000, "/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPA-1"),
            (102, 12_777, "ACCREDITO CUMULATIVO PSP ESEMPIO"),
            (103, 2_100, "/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPD-1"),
        ]);
        incasso_testkit::assert_xsd_valid("treasury/opi/OPI_GIORNALE_DI_CASSA_V_1_8.xsd", &[&doc]);
        let up = admin
            .post_file(
                "/backoffice/tesoreria/carica",
                &[("tracciato", "")],
                "file",
                "giornale.xml",
                doc.into_bytes(),
            )
            .await;
        assert_status(&up, StatusCode::SEE_OTHER, "a journal uploaded");
        // The sample's two movements of its first account come along.
        assert_eq!(
            up.location.as_deref(),
            Some("/backoffice/tesoreria?nuovi=5")
        );
        let bad = admin
            .post_file(
                "/backoffice/tesoreria/carica",
                &[],
                "file",
                "x.xml",
                b"nope".to_vec(),
            )
            .await;
        assert_status(&bad, StatusCode::BAD_REQUEST, "not a treasury file");
        let ran = admin.post("/backoffice/tesoreria/riconcilia", &[]).await;
        assert_status(&ran, StatusCode::SEE_OTHER, "a run");
        let after = admin.get(ran.location.as_deref().unwrap()).await.text();
        assert!(after.contains("Riconciliazione eseguita"), "{after}");
        let movements = admin.get("/backoffice/tesoreria").await.text();
        assert!(movements.contains("Abbinato") && movements.contains("Non abbinato"));
        assert!(movements.contains("Importo diverso dal flusso"));
        let unmatched = admin
            .get("/backoffice/tesoreria?stato=UNMATCHED")
            .await
            .text();
        assert!(unmatched.contains("0000102") && !unmatched.contains("0000101"));
        let csv = admin.get("/backoffice/tesoreria?formato=csv").await.text();
        assert_eq!(csv.lines().count(), 6, "{csv}");
        // The matched sospeso: its breakdown and reversale.
        let m101 = admin
            .get(&format!(
                "/backoffice/tesoreria/movimento?id={}",
                backoffice::encode(SOSPESO_101)
            ))
            .await
            .text();
        assert!(m101.contains("2026-10-02PSPA-1") && m101.contains("Identificativo del flusso"));
        assert!(m101.contains("Scarica la proposta di reversale"));

        // Every anomaly class, with what it means.
        let anomalies = admin.get("/backoffice/tesoreria/anomalie").await;
        assert_status(&anomalies, StatusCode::OK, "anomalies");
        let html = anomalies.text();
        for (code, name, _) in incasso_app::reconcile::ANOMALY_CLASSES {
            assert!(html.contains(code), "{code} listed");
            // Up to an apostrophe, which the page escapes.
            let plain = name.split('\'').next().unwrap();
            assert!(html.contains(plain), "{name}");
        }
        assert!(html.contains("2026-10-02PSPB-1"), "a flow without sospeso");
        let only = admin
            .get("/backoffice/tesoreria/anomalie?classe=MOVEMENT_WITHOUT_FLOW")
            .await
            .text();
        assert!(only.contains(SOSPESO_102) && !only.contains("2026-10-02PSPB-1"));
        let csv = admin
            .get("/backoffice/tesoreria/anomalie?formato=csv")
            .await
            .text();
        assert!(csv.starts_with("\u{feff}Classe;Oggetto;Dettaglio;Importo"));
        // Lines by class.
        let reconciled = admin
            .get("/backoffice/tesoreria/righe?classe=RECONCILED")
            .await
            .text();
        assert!(reconciled.contains(iuv(0)) && !reconciled.contains(iuv(1)));
        let waiting = admin
            .get("/backoffice/tesoreria/righe?classe=AWAITING_TREASURY")
            .await
            .text();
        assert!(waiting.contains(iuv(1)) && waiting.contains(iuv(2)));

        // ------------------------------------------------ regularization
        let m102 = format!(
            "/backoffice/tesoreria/movimento?id={}",
            backoffice::encode(SOSPESO_102)
        );
        let page = admin.get(&m102).await.text();
        assert!(page.contains("Regolarizza a mano"), "{page}");
        assert!(page.contains("2026-10-02PSPB-1") && page.contains("2026-10-02PSPC-1"));
        assert!(
            !page.contains("value=\"2026-10-02PSPA-1\""),
            "a flow another sospeso pays is not offered"
        );
        // A wrong total: refused, both amounts and the difference told,
        // nothing written.
        let wrong = admin
            .post(
                "/backoffice/tesoreria/regolarizza",
                &[
                    ("id", SOSPESO_102),
                    ("flusso", "2026-10-02PSPB-1"),
                    ("nota", "bonifico cumulativo di due giorni"),
                ],
            )
            .await;
        assert_status(&wrong, StatusCode::BAD_REQUEST, "a wrong total");
        let html = wrong.text();
        assert!(
            html.contains("50,00") && html.contains("127,77") && html.contains("-77,77"),
            "{html}"
        );
        assert!(html.contains("checked"), "the form keeps the choice");
        assert_eq!(store.manual_tie(ENTE, SOSPESO_102).await.unwrap(), None);
        // No note: refused.
        let no_note = admin
            .post(
                "/backoffice/tesoreria/regolarizza",
                &[
                    ("id", SOSPESO_102),
                    ("flusso", "2026-10-02PSPB-1"),
                    ("flusso", "2026-10-02PSPC-1"),
                    ("nota", "  "),
                ],
            )
            .await;
        assert_status(&no_note, StatusCode::BAD_REQUEST, "no note");
        assert!(no_note.text().contains("nota: obbligatoria"));
        // A flow another sospeso pays: refused.
        let taken = admin
            .post(
                "/backoffice/tesoreria/regolarizza",
                &[
                    ("id", SOSPESO_103),
                    ("flusso", "2026-10-02PSPA-1"),
                    ("nota", "prova"),
                ],
            )
            .await;
        assert_status(&taken, StatusCode::CONFLICT, "a flow taken");
        assert!(taken.text().contains(SOSPESO_101));
        // Forged: refused.
        let forged = admin
            .post_raw(
                "/backoffice/tesoreria/regolarizza",
                &[
                    ("id", SOSPESO_102),
                    ("flusso", "2026-10-02PSPB-1"),
                    ("nota", "x"),
                    ("csrf", "no"),
                ],
            )
            .await;
        assert_status(&forged, StatusCode::FORBIDDEN, "no CSRF");
        // The right total: tied.
        let tied = admin
            .post(
                "/backoffice/tesoreria/regolarizza",
                &[
                    ("id", SOSPESO_102),
                    ("flusso", "2026-10-02PSPB-1"),
                    ("flusso", "2026-10-02PSPC-1"),
                    ("nota", "bonifico cumulativo di due giorni"),
                ],
            )
            .await;
        assert_status(&tied, StatusCode::SEE_OTHER, "tied");
        let tie = store.manual_tie(ENTE, SOSPESO_102).await.unwrap().unwrap();
        assert_eq!(tie.flow_ids, ["2026-10-02PSPB-1", "2026-10-02PSPC-1"]);
        assert_eq!(tie.actor, "operator:admin.reporting");
        let page = admin.get(tied.location.as_deref().unwrap()).await.text();
        assert!(page.contains("Regolarizzato a mano") && page.contains("bonifico cumulativo"));
        // A later run keeps it, and no longer reports what it settled.
        let ran = admin.post("/backoffice/tesoreria/riconcilia", &[]).await;
        assert_status(&ran, StatusCode::SEE_OTHER, "a run after the tie");
        let m = store
            .movement_row(ENTE, SOSPESO_102)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.status.as_deref(), Some("MANUAL"), "{backend:?}");
        let anomalies = store.recon_anomalies(ENTE, None).await.unwrap();
        assert!(
            !anomalies
                .iter()
                .any(|a| a.subject == SOSPESO_102 || a.subject == "2026-10-02PSPB-1"),
            "{anomalies:?}"
        );
        assert!(
            anomalies.iter().any(|a| a.subject == SOSPESO_103),
            "{anomalies:?}"
        );
        let reconciled = admin
            .get("/backoffice/tesoreria/righe?classe=RECONCILED")
            .await
            .text();
        assert!(reconciled.contains(iuv(1)) && reconciled.contains(iuv(2)));
        let flow_b = admin
            .get("/backoffice/flussi/2026-10-02PSPB-1")
            .await
            .text();
        assert!(flow_b.contains(SOSPESO_102), "the flow names its sospeso");
        // Its reversale: over both flows' accertamenti, valid OPI.
        let rev = admin
            .get(&format!(
                "/backoffice/tesoreria/reversale?id={}&numero=7",
                backoffice::encode(SOSPESO_102)
            ))
            .await;
        assert_status(&rev, StatusCode::OK, "a reversale");
        assert!(rev.content_type.starts_with("application/xml"));
        let xml = rev.text();
        incasso_testkit::assert_xsd_valid(
            "treasury/opi/OPI_FLUSSO_ORDINATIVI_V_1_7_1.xsd",
            &[&xml],
        );
        let root = incasso_xml::parse(xml.as_bytes(), incasso_xml::Limits::default()).unwrap();
        let r = root.child("reversale").unwrap();
        assert_eq!(r.text_of("numero_reversale"), Some("7"));
        assert_eq!(r.text_of("importo_reversale"), Some("127.77"));
        let v = r.child("informazioni_versante").unwrap();
        assert_eq!(
            v.child("sospeso").unwrap().text_of("numero_provvisorio"),
            Some("102")
        );
        let parts: Vec<(String, String)> = v
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
        assert_eq!(
            parts,
            [
                ("ACC-A".to_string(), "50.00".to_string()),
                ("ACC-B".into(), "77.77".into())
            ]
        );
        let bad_number = admin
            .get(&format!(
                "/backoffice/tesoreria/reversale?id={}&numero=zero",
                backoffice::encode(SOSPESO_102)
            ))
            .await;
        assert_status(&bad_number, StatusCode::BAD_REQUEST, "a bad number");
        // Tied again: refused, the tie stands.
        let twice = admin
            .post(
                "/backoffice/tesoreria/regolarizza",
                &[
                    ("id", SOSPESO_102),
                    ("flusso", "2026-10-02PSPD-1"),
                    ("nota", "x"),
                ],
            )
            .await;
        assert_status(&twice, StatusCode::CONFLICT, "tied twice");

        // ------------------------------------------------ rights
        // Another Ente's administrator: nothing of this Ente, nothing
        // changed.
        let other = clerk(
            &store,
            base,
            "altro.ente",
            rights(Role::EnteAdmin, Some(OTHER_ENTE), &[], &[]),
        )
        .await;
        let list = other.get("/backoffice/ricevute").await.text();
        assert!(!list.contains(iuv(0)) && list.contains("Nessun risultato"));
        for path in [
            format!("/backoffice/ricevute/R-{}", iuv(0)),
            format!("/backoffice/ricevute/R-{}/xml", iuv(0)),
            "/backoffice/flussi/2026-10-02PSPA-1".to_string(),
            m102.clone(),
            format!(
                "/backoffice/tesoreria/reversale?id={}",
                backoffice::encode(SOSPESO_102)
            ),
        ] {
            assert_status(&other.get(&path).await, StatusCode::NOT_FOUND, &path);
        }
        assert!(
            !other
                .get("/backoffice/flussi")
                .await
                .text()
                .contains("PSPA")
        );
        assert!(
            !other
                .get("/backoffice/tesoreria")
                .await
                .text()
                .contains("0000102")
        );
        let undo = other
            .post("/backoffice/tesoreria/annulla", &[("id", SOSPESO_102)])
            .await;
        assert_status(&undo, StatusCode::NOT_FOUND, "another Ente's undo");
        let tie_other = other
            .post(
                "/backoffice/tesoreria/regolarizza",
                &[
                    ("id", SOSPESO_103),
                    ("flusso", "2026-10-02PSPD-1"),
                    ("nota", "x"),
                ],
            )
            .await;
        assert_status(&tie_other, StatusCode::NOT_FOUND, "another Ente's tie");
        assert!(store.manual_tie(ENTE, SOSPESO_102).await.unwrap().is_some());
        assert!(store.manual_tie(ENTE, SOSPESO_103).await.unwrap().is_none());

        // An accountant reads everything and writes nothing.
        let accountant = clerk(
            &store,
            base,
            "ragioneria",
            rights(Role::Accountant, Some(ENTE), &[], &[]),
        )
        .await;
        for path in [
            "/backoffice/ricevute".to_string(),
            "/backoffice/flussi".to_string(),
            "/backoffice/tesoreria".to_string(),
            "/backoffice/tesoreria/anomalie".to_string(),
            m102.clone(),
        ] {
            let a = accountant.get(&path).await;
            assert_status(&a, StatusCode::OK, &path);
            assert!(
                !a.text().contains("enctype=\"multipart/form-data\""),
                "{path}"
            );
        }
        assert!(
            !accountant
                .get(&m102)
                .await
                .text()
                .contains("Annulla la regolarizzazione")
        );
        let up = upload_flow(
            &accountant,
            &flow("2026-10-09PSPZ-1", "TRN-Z", &[(iuv(0), 1)]),
        )
        .await;
        assert_status(&up, StatusCode::FORBIDDEN, "an accountant's flow upload");
        let up = accountant
            .post_file(
                "/backoffice/tesoreria/carica",
                &[],
                "file",
                "g.xml",
                journal(&[(104, 100, "X")]).into_bytes(),
            )
            .await;
        assert_status(
            &up,
            StatusCode::FORBIDDEN,
            "an accountant's treasury upload",
        );
        assert_status(
            &accountant
                .post("/backoffice/tesoreria/riconcilia", &[])
                .await,
            StatusCode::FORBIDDEN,
            "an accountant's run",
        );
        let tie = accountant
            .post(
                "/backoffice/tesoreria/regolarizza",
                &[
                    ("id", SOSPESO_103),
                    ("flusso", "2026-10-02PSPD-1"),
                    ("nota", "x"),
                ],
            )
            .await;
        assert_status(&tie, StatusCode::FORBIDDEN, "an accountant's tie");
        assert_status(
            &accountant
                .post("/backoffice/tesoreria/annulla", &[("id", SOSPESO_102)])
                .await,
            StatusCode::FORBIDDEN,
            "an accountant's undo",
        );
        assert!(
            store
                .current_flow(ENTE, "2026-10-09PSPZ-1")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .movement(ENTE, "2022/0000005/0000104/ESEGUITO")
                .await
                .unwrap()
                .is_none()
        );
        assert!(store.manual_tie(ENTE, SOSPESO_102).await.unwrap().is_some());
        // The accountant downloads the reversale: a read.
        let rev = accountant
            .get(&format!(
                "/backoffice/tesoreria/reversale?id={}",
                backoffice::encode(SOSPESO_102)
            ))
            .await;
        assert_status(&rev, StatusCode::OK, "an accountant's reversale");

        // An office operator sees the receipts of their office only; one
        // without the Reporting area sees none of it.
        let office = clerk(
            &store,
            base,
            "ufficio.tributi",
            rights(
                Role::OfficeOperator,
                Some(ENTE),
                &[(Area::Reporting, Access::Read)],
                &["UT"],
            ),
        )
        .await;
        let list = office.get("/backoffice/ricevute").await.text();
        assert!(
            list.contains(iuv(0)) && !list.contains(iuv(1)),
            "{backend:?}"
        );
        assert_status(
            &office
                .get(&format!("/backoffice/ricevute/R-{}", iuv(1)))
                .await,
            StatusCode::NOT_FOUND,
            "another office's receipt",
        );
        assert_status(
            &office
                .get(&format!("/backoffice/ricevute/R-{}/xml", iuv(1)))
                .await,
            StatusCode::NOT_FOUND,
            "another office's receipt XML",
        );
        assert_status(
            &office
                .get(&format!("/backoffice/ricevute/R-{}", iuv(0)))
                .await,
            StatusCode::OK,
            "their office's receipt",
        );
        assert_status(
            &office.post("/backoffice/tesoreria/riconcilia", &[]).await,
            StatusCode::FORBIDDEN,
            "reading is not writing",
        );
        let outsider = clerk(
            &store,
            base,
            "ufficio.anagrafe",
            rights(
                Role::OfficeOperator,
                Some(ENTE),
                &[(Area::Positions, Access::Write)],
                &["UT"],
            ),
        )
        .await;
        for path in [
            "/backoffice/ricevute",
            "/backoffice/flussi",
            "/backoffice/tesoreria",
            "/backoffice/tesoreria/anomalie",
            "/backoffice/tesoreria/righe",
        ] {
            assert_status(&outsider.get(path).await, StatusCode::FORBIDDEN, path);
        }

        // ------------------------------------------------ undo
        let undone = admin
            .post("/backoffice/tesoreria/annulla", &[("id", SOSPESO_102)])
            .await;
        assert_status(&undone, StatusCode::SEE_OTHER, "undone");
        assert!(store.manual_tie(ENTE, SOSPESO_102).await.unwrap().is_none());
        let m = store
            .movement_row(ENTE, SOSPESO_102)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.status.as_deref(), Some("UNMATCHED"), "{backend:?}");
        let page = admin.get(undone.location.as_deref().unwrap()).await.text();
        assert!(page.contains("Regolarizzazione annullata") && page.contains("Regolarizza a mano"));
        let again = admin
            .post("/backoffice/tesoreria/annulla", &[("id", SOSPESO_102)])
            .await;
        assert_status(&again, StatusCode::NOT_FOUND, "nothing to undo");
        // Each write is in the audit log, refusals included.
        let events = store
            .audit_events(Some(ENTE), Some("regularization"), None, 100)
            .await
            .unwrap();
        let outcomes: Vec<(String, String)> = events
            .iter()
            .rev()
            .map(|(_, e)| (e.action.clone(), e.outcome.clone()))
            .collect();
        assert!(outcomes.contains(&("regularization.create".into(), "OK".into())));
        assert!(outcomes.contains(&(
            "regularization.create".into(),
            "REGULARIZATION_AMOUNT".into()
        )));
        assert!(outcomes.contains(&("regularization.undo".into(), "OK".into())));
        store.close().await;
    }
}

/// Every page of the Reporting area, filled (receipts, flows, a matched
/// sospeso, one to regularize with its form, one tied by hand, anomalies),
/// in a desktop window and a phone's: axe-core finds nothing, the console
/// has no error, and nothing overflows sideways on the phone. SQLite only,
/// as the other browser tests: the pages are under test here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reporting_pages_pass_axe_in_a_browser() {
    use incasso_app::reconcile;
    for screen in [
        browser::Screen::Desktop(1280, 900),
        browser::Screen::Phone(390, 844),
    ] {
        let Some(b) = browser::Browser::start(screen).await else {
            return;
        };
        let app = spawn_app(incasso_testkit::Backend::Sqlite).await;
        let store = app.store.clone();
        let base = app.server.base.clone();
        let options = seed(&store).await;
        treasury_settings(&store).await;
        let now = Utc::now();
        let iuv = |i: usize| options[i].0.as_str();
        for f in [
            flow("2026-10-02PSPA-1", "TRN-A", &[(iuv(0), 10_000)]),
            flow("2026-10-02PSPB-1", "TRN-B", &[(iuv(1), 5_000)]),
            flow("2026-10-02PSPC-1", "TRN-C", &[(iuv(2), 7_777)]),
            flow("2026-10-02PSPD-1", "TRN-D", &[("01999000000000099", 2_000)]),
        ] {
            reconcile::take_flow(&store, ENTE, fdr::write(&f).as_bytes(), now)
                .await
                .unwrap();
        }
        let doc = journal(&[
            (101, 10_000, "/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPA-1"),
            (102, 12_777, "ACCREDITO CUMULATIVO PSP ESEMPIO"),
            (103, 2_100, "/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPD-1"),
            (104, 5_000, "ACCREDITO PSP ESEMPIO"),
        ]);
        reconcile::take_treasury_file(&store, ENTE, doc.as_bytes(), now)
            .await
            .unwrap();
        reconcile::reconcile(&store, ENTE, now).await.unwrap();
        let flows = [
            "2026-10-02PSPB-1".to_string(),
            "2026-10-02PSPC-1".to_string(),
        ];
        reconcile::tie_manually(
            &store,
            ENTE,
            &reconcile::TieRequest {
                movement_id: SOSPESO_102,
                flow_ids: &flows,
                note: "bonifico cumulativo",
                actor: "operator:test",
            },
            now,
        )
        .await
        .unwrap();
        // A clerk whose first password is changed, then signed in in the
        // browser.
        clerk(
            &store,
            &base,
            "browser.reporting",
            rights(Role::EnteAdmin, Some(ENTE), &[], &[]),
        )
        .await;
        b.goto(&format!("{base}/backoffice/login")).await;
        let user = b.find("#username").await;
        b.send_keys(&user, "browser.reporting").await;
        let password = b.find("#password").await;
        b.send_keys(&password, backoffice::PASSWORD).await;
        let submit = b.find("button[type=submit]").await;
        b.click(&submit).await;
        b.wait_for(
            "the home page",
            "location.pathname === '/backoffice/' && document.readyState === 'complete'",
        )
        .await;
        let movement = |id: &str| {
            format!(
                "/backoffice/tesoreria/movimento?id={}",
                backoffice::encode(id)
            )
        };
        let pages = [
            "/backoffice/ricevute".to_string(),
            "/backoffice/ricevute?dal=31%2F02%2F2026".to_string(),
            format!("/backoffice/ricevute/R-{}", iuv(0)),
            "/backoffice/flussi".to_string(),
            "/backoffice/flussi/2026-10-02PSPA-1?caricato=nuovo".to_string(),
            "/backoffice/flussi/2026-10-02PSPD-1".to_string(),
            "/backoffice/tesoreria?nuovi=4".to_string(),
            "/backoffice/tesoreria/anomalie".to_string(),
            "/backoffice/tesoreria/anomalie?classe=AMOUNT_MISMATCH".to_string(),
            "/backoffice/tesoreria/righe".to_string(),
            movement(SOSPESO_101),
            movement(SOSPESO_102),
            movement("2022/0000005/0000104/ESEGUITO"),
            format!(
                "/backoffice/tesoreria/reversale?id={}&numero=zero",
                backoffice::encode(SOSPESO_101)
            ),
        ];
        for path in &pages {
            b.goto(&format!("{base}{path}")).await;
            b.wait_for("the page", "document.readyState === 'complete'")
                .await;
            b.execute_async(
                "const done = arguments[arguments.length - 1];
                 document.fonts.ready.then(() => done(document.fonts.status));",
                vec![],
            )
            .await;
            let report = b.axe().await;
            report.assert_clean(&format!("{screen:?} {path}"));
            // A person's look at the pages, when a folder is named.
            if let Some(dir) = std::env::var_os("INCASSO_SCREENSHOT_DIR").filter(|d| !d.is_empty())
            {
                let name: String = path
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect();
                let kind = match screen {
                    browser::Screen::Desktop(..) => "desktop",
                    browser::Screen::Phone(..) => "phone",
                };
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(
                    std::path::Path::new(&dir).join(format!("reporting-{kind}{name}.png")),
                    b.screenshot().await,
                )
                .unwrap();
            }
            if let browser::Screen::Phone(width, _) = screen {
                let wide = b
                    .execute("return document.documentElement.scrollWidth", vec![])
                    .await;
                assert!(
                    wide.as_u64().unwrap_or(0) <= u64::from(width),
                    "{path}: {wide} px wide on a phone of {width}"
                );
            }
        }
        let console = b.console().await;
        let errors: Vec<_> = console
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            // The bad-date and bad-number pages answer 400 on purpose.
            .filter(|e| {
                !e["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("status of 400")
            })
            .collect();
        assert!(errors.is_empty(), "{screen:?}: console errors {errors:?}");
        b.quit().await;
        store.close().await;
    }
}
