//! The Digit BUS end to end, on every backend: the built-in layouts load
//! their real sample files (placeholders set to test data), bad input is
//! reported row by row, supplies are atomic and never loaded twice, the
//! outcome file and the export come back in the application's layout.

use chrono::Utc;
use incasso_app::supply::{self, LoadError, LoadReport};
use incasso_bus::Layout;
use incasso_core::Cents;
use incasso_core::accertamento::{Accertamento, AccertamentoRef};
use incasso_core::catalogue::Service;
use incasso_core::ente::{Ente, StationLink};
use incasso_core::position::PositionStatus;
use incasso_store::{ListFilter, ReceiptRecord, Store};
use incasso_testkit::{Backend, backends, fresh_database_url};

const A: &str = "80000130585";
const IBAN: &str = "IT65B0200805364000104567891";
const POSTAL: &str = "IT98A0760103200001234567890";

async fn store(backend: Backend) -> Store {
    store_at(&fresh_database_url(backend).await).await
}

async fn store_at(url: &str) -> Store {
    let store = Store::connect(url).await.unwrap();
    let now = Utc::now();
    store
        .create_ente(
            &Ente {
                fiscal_code: A.into(),
                name: "Comune di Borgo Esempio".into(),
                ipa_code: None,
                iban: Some(IBAN.into()),
                postal_iban: Some(POSTAL.into()),
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
                broker_id: "15376371009".into(),
                station_id: "ST_01".into(),
                segregation_code: 1,
            },
            now,
        )
        .await
        .unwrap();
    store
        .put_accertamento(
            A,
            &Accertamento {
                year: 2026,
                code: "ACC-TARI".into(),
                description: "TARI".into(),
                chapter: "1010".into(),
                article: None,
                siope_code: None,
                active: true,
            },
        )
        .await
        .unwrap();
    for code in ["TARI", "MENSA"] {
        store
            .put_service(
                A,
                &Service {
                    code: code.into(),
                    name: format!("Servizio {code}"),
                    office_code: None,
                    taxonomy_code: "9/0101101IM/".into(),
                    default_accertamento: Some(AccertamentoRef {
                        year: 2026,
                        code: "ACC-TARI".into(),
                    }),
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
}

/// A paid receipt of Ente A for one notice, as the Node sends it.
fn receipt(receipt_id: &str, notice_number: &str, iuv: String, amount: i64) -> ReceiptRecord {
    ReceiptRecord {
        debtor: None,
        ente: A.into(),
        receipt_id: receipt_id.into(),
        notice_number: notice_number.into(),
        iuv,
        owner_ente: A.into(),
        outcome: "OK".into(),
        amount,
        fee: None,
        psp_id: "PSP1".into(),
        psp_name: "Banca".into(),
        channel_id: "C".into(),
        payment_method: None,
        payment_date_time: Some(Utc::now()),
        application_date: None,
        transfer_date: None,
        station_id: "ST_01".into(),
        primitive: "paSendRTV2".into(),
        stand_in: false,
        transfers_json: "[]".into(),
        raw_xml: "<x/>".into(),
    }
}

fn builtin(name: &str) -> Layout {
    incasso_bus::builtin::get(name).unwrap().unwrap()
}

async fn load_bytes(
    store: &Store,
    layout: &Layout,
    service: Option<&str>,
    bytes: Vec<u8>,
) -> (Result<LoadReport, LoadError>, Vec<u8>) {
    let open = move || -> std::io::Result<Box<dyn std::io::Read + Send>> {
        Ok(Box::new(std::io::Cursor::new(bytes.clone())))
    };
    let mut outcome = Vec::new();
    let file = supply::SupplyFile {
        ente: A,
        layout,
        default_service: service,
        file_name: "test",
        open: &open,
    };
    let sinks = supply::Sinks {
        outcome: Some(&mut outcome),
        ..supply::Sinks::none()
    };
    let r = supply::load(store, &file, sinks).await;
    (r, outcome)
}

async fn count(store: &Store) -> u64 {
    store
        .list_positions(
            A,
            &ListFilter {
                limit: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .items_found
}

const INCASSO_CSV: &str = "codice;servizio;codice_fiscale;nominativo;rata;importo;causale;scadenza;iuv;accertamento;operazione
TARI-001;TARI;RSSMRA85T10A562S;Mario Rossi;0;300,00;TARI 2027 unica;31/03/2027;;2026/ACC-TARI;
TARI-001;TARI;RSSMRA85T10A562S;Mario Rossi;1;150,00;TARI 2027 rata 1;31/03/2027;;2026/ACC-TARI;
TARI-001;TARI;RSSMRA85T10A562S;Mario Rossi;2;150,00;TARI 2027 rata 2;30/06/2027;;2026/ACC-TARI;
MENSA-7;MENSA;RSSMRA85T10A562S;Maria Bianchi;0;1.234,56;Mensa 2027;30/04/2027;;;
";

#[tokio::test]
async fn incasso_csv_loads_once_with_outcome_and_export() {
    for backend in backends() {
        let store = store(backend).await;
        let layout = builtin("incasso-csv");
        let (r, outcome) = load_bytes(&store, &layout, None, INCASSO_CSV.as_bytes().to_vec()).await;
        let report = r.unwrap();
        assert_eq!(report.status, "LOADED", "{backend:?} {:?}", report.errors);
        assert_eq!((report.rows_read, report.positions_created), (4, 2));
        let p = store.get_position(A, "TARI-001").await.unwrap().position;
        assert_eq!(p.status, PositionStatus::Valid);
        assert_eq!(p.options.len(), 3);
        assert!(p.options[1].is_partial_payment && !p.options[0].is_partial_payment);
        assert_eq!(p.options[0].transfers[0].quotas[0].amount, Cents(30_000));
        let mensa = store.get_position(A, "MENSA-7").await.unwrap().position;
        assert_eq!(mensa.options[0].amount, Cents(123_456));
        // The outcome: the application's own rows, with notice numbers.
        let text = String::from_utf8(outcome).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].ends_with(";numero_avviso"), "{}", lines[0]);
        let nav = p.options[1].notice_number.clone().unwrap();
        assert!(
            lines[2].starts_with("TARI-001;TARI;") && lines[2].ends_with(nav.as_str()),
            "{}",
            lines[2]
        );
        assert!(lines[2].contains(&format!(";{};", p.options[1].iuv.clone().unwrap())));
        // The same file again: refused, nothing doubled.
        let (again, _) = load_bytes(&store, &layout, None, INCASSO_CSV.as_bytes().to_vec()).await;
        assert!(matches!(again, Err(LoadError::Duplicate(_))), "{backend:?}");
        assert_eq!(count(&store).await, 2);
        // A payment comes back in the application's export, once per consumer.
        store
            .record_receipt(
                &ReceiptRecord {
                    debtor: None,
                    fee: Some(100),
                    psp_name: "Banca Esempio".into(),
                    channel_id: "PSP1_01".into(),
                    ..receipt(
                        "rt-bus-1",
                        nav.as_str(),
                        p.options[1].iuv.clone().unwrap(),
                        15_000,
                    )
                },
                // Older than the export's lag (receipts are stamped before commit).
                Utc::now() - chrono::Duration::seconds(5),
            )
            .await
            .unwrap();
        let (doc, n) = incasso_app::export::export(&store, A, &layout, "tributi")
            .await
            .unwrap();
        let doc = String::from_utf8(doc).unwrap();
        assert_eq!(n, 1);
        assert!(
            doc.starts_with(
                "codice;numero_avviso;iuv;importo_pagato;data_pagamento;id_ricevuta;psp"
            ),
            "{doc}"
        );
        assert!(
            doc.contains(&format!("TARI-001;{};", nav.as_str()))
                && doc.contains(";150,00;")
                && doc.contains("rt-bus-1"),
            "{doc}"
        );
        let (_, n) = incasso_app::export::export(&store, A, &layout, "tributi")
            .await
            .unwrap();
        assert_eq!(n, 0, "the cursor moved");
        let (_, n) = incasso_app::export::export(&store, A, &layout, "ragioneria")
            .await
            .unwrap();
        assert_eq!(n, 1, "another consumer has its own cursor");
    }
}

fn govpay(text: &str) -> Vec<u8> {
    text.replace("{idA2A}", "GESTIONALE")
        .replace("{idPendenza}", "PND")
        .replace("{idDominio}", A)
        .replace("{numeroAvviso}", "")
        .replace("{tipoPendenza}", "TARI")
        .replace("{importo_voce}", "16.00")
        .replace("{importo}", "32.00")
        .replace("{ibanAccredito}", IBAN)
        .replace("{ibanAppoggio}", POSTAL)
        .replace("2020-12-30", "2030-12-30")
        .into_bytes()
}

#[tokio::test]
async fn govpay_and_gpd_samples_load() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/peers");
    for backend in backends() {
        let store = store(backend).await;
        // GovPay CSV: four pendenze, one with a digital stamp as second voce.
        // Row 1 splits 32.00 over two voci of 16.00; rows 2-4 have one voce of 32.00.
        let text = std::fs::read_to_string(dir.join("tracciato-pendenze.csv")).unwrap();
        let (r, outcome) = load_bytes(&store, &builtin("govpay-csv"), None, govpay(&text)).await;
        let report = r.unwrap();
        assert_eq!(report.status, "LOADED", "{backend:?} {:?}", report.errors);
        assert_eq!(report.positions_created, 4);
        let stamped = store.get_position(A, "PND-1").await.unwrap().position;
        assert_eq!(stamped.options[0].transfers.len(), 2);
        assert_eq!(
            stamped.options[0].transfers[1]
                .stamp
                .as_ref()
                .unwrap()
                .provincial_residence,
            "FI"
        );
        let with_postal = store.get_position(A, "PND-4").await.unwrap().position;
        assert_eq!(
            with_postal.options[0].transfers[0].postal_iban.as_deref(),
            Some(POSTAL)
        );
        assert!(
            String::from_utf8(outcome)
                .unwrap()
                .lines()
                .nth(1)
                .unwrap()
                .contains(",301"),
            "numeroAvviso filled"
        );
        // GovPay's annullamento: the same keys with importo 0 cancel them.
        let text =
            std::fs::read_to_string(dir.join("tracciato-pendenze-annullamento.csv")).unwrap();
        let cancel = govpay(&text.replace("{importo},2019", "0,2019"));
        let (r, _) = load_bytes(&store, &builtin("govpay-csv"), None, cancel).await;
        let report = r.unwrap();
        assert_eq!(
            report.positions_cancelled, 4,
            "{backend:?} {:?}",
            report.errors
        );
        assert_eq!(
            store
                .get_position(A, "PND-2")
                .await
                .unwrap()
                .position
                .status,
            PositionStatus::Invalid
        );
        // The v10 traffic-fine document: reduced and discounted pendenze.
        let text = std::fs::read_to_string(dir.join("tracciato-pendenze-v10.csv")).unwrap();
        let (r, _) = load_bytes(
            &store,
            &builtin("govpay-csv"),
            None,
            govpay(&text.replace("{idPendenza}", "CDS")),
        )
        .await;
        let report = r.unwrap();
        assert_eq!(report.positions_created, 4, "{:?}", report.errors);
        assert_eq!(
            store
                .get_position(A, "CDS-1R")
                .await
                .unwrap()
                .position
                .options[0]
                .amount,
            Cents(5_000)
        );
        // The same file as documents: each fine is one position whose two
        // rows are alternatives, each with its own notice number (issue 14).
        let text = std::fs::read_to_string(dir.join("tracciato-pendenze-v10.csv")).unwrap();
        let (r, outcome) = load_bytes(
            &store,
            &builtin("govpay-csv-documenti"),
            None,
            govpay(&text.replace("{idPendenza}", "MULTA")),
        )
        .await;
        let report = r.unwrap();
        assert_eq!(report.positions_created, 2, "{:?}", report.errors);
        let fine = store.get_position(A, "D1-MULTA").await.unwrap().position;
        assert_eq!(fine.options.len(), 2, "{backend:?}");
        assert!(fine.options.iter().all(|o| !o.is_partial_payment));
        let amounts: Vec<Cents> = fine.options.iter().map(|o| o.amount).collect();
        assert!(amounts.contains(&Cents(5_000)) && amounts.contains(&Cents(15_000)));
        let navs: Vec<String> = fine
            .options
            .iter()
            .map(|o| o.notice_number.as_ref().unwrap().as_str().to_string())
            .collect();
        assert_ne!(navs[0], navs[1], "each alternative its own notice number");
        let outcome = String::from_utf8(outcome).unwrap();
        assert!(
            outcome.contains(&navs[0]) && outcome.contains(&navs[1]),
            "{outcome}"
        );
        // The fine's notice prints both deadlines.
        let ctx =
            incasso_app::App::new(store.clone(), incasso_app::Settings::new("")).system("test");
        let pdf = incasso_app::notices::position_pdf(
            &ctx,
            A,
            "D1-MULTA",
            incasso_notice::Language::Italian,
        )
        .await
        .unwrap();
        assert!(pdf.starts_with(b"%PDF"));
        // The same layout with ';' is not the declared layout: refused whole.
        let text = std::fs::read_to_string(dir.join("tracciato-pendenze-separatore.csv")).unwrap();
        let (r, _) = load_bytes(&store, &builtin("govpay-csv"), None, govpay(&text)).await;
        let err = r.unwrap_err().to_string();
        assert!(err.contains("non corrisponde al tracciato"), "{err}");
        // GovPay JSON: three inserimenti (no tipoPendenza: the supply's service).
        let text = std::fs::read_to_string(dir.join("tracciato-pendenze.json")).unwrap();
        let json = text
            .replace("#(idA2A)", "GESTIONALE")
            .replace("#(idDominio)", A)
            .replace("#(ibanAccredito)", IBAN)
            .replace("#(idPendenza + '-0')", "GPJ-0")
            .replace("#(idPendenza + '-1')", "GPJ-1")
            .replace("#(idPendenza + '-2')", "GPJ-2")
            .replace("#(idPendenza)", "GPJ")
            .replace("2020-12-30", "2030-12-30");
        let (r, _) = load_bytes(
            &store,
            &builtin("govpay-json"),
            Some("MENSA"),
            json.into_bytes(),
        )
        .await;
        let report = r.unwrap();
        assert_eq!(
            report.positions_created, 3,
            "{backend:?} {:?}",
            report.errors
        );
        assert_eq!(
            store
                .get_position(A, "GPJ-1")
                .await
                .unwrap()
                .position
                .options[0]
                .amount,
            Cents(31_125)
        );
        // Two JSON records with one key are a repeat, not two installments.
        let record = |causale: &str| {
            serde_json::json!({
                "idPendenza": "DUP-J",
                "soggettoPagatore": {"tipo": "F", "identificativo": "RSSMRA85T10A562S", "anagrafica": "Mario Rossi"},
                "importo": "10.00",
                "causale": causale,
                "dataScadenza": "2030-12-30",
                "voci": [{"importo": "10.00", "descrizione": causale, "ibanAccredito": IBAN}]
            })
        };
        let twice = serde_json::json!({"inserimenti": [record("prima"), record("seconda")]});
        let (r, _) = load_bytes(
            &store,
            &builtin("govpay-json"),
            Some("MENSA"),
            twice.to_string().into_bytes(),
        )
        .await;
        let report = r.unwrap();
        assert_eq!(
            report.positions_created, 1,
            "{backend:?} {:?}",
            report.errors
        );
        assert!(
            report
                .errors
                .iter()
                .any(|e| e.code == "DUPLICATE_KEY" && e.line == 2),
            "{:?}",
            report.errors
        );
        let p = store.get_position(A, "DUP-J").await.unwrap().position;
        assert_eq!(p.options.len(), 1);
        assert_eq!(p.options[0].description, "prima");
        // GPD massive upload JSON.
        let text =
            std::fs::read_to_string(dir.join("PaymentPositions.massive-upload.json")).unwrap();
        let iuv = &incasso_core::codes::NoticeNumber::generate(1, 777_777)
            .unwrap()
            .as_str()[1..]
            .to_string();
        let json = text
            .replace("77777777777", A)
            .replace("IT0000000000000000000000000", IBAN)
            .replace("categoryWebinar", "9/0101101IM/")
            .replace("12345678912345678", iuv)
            .replace("\"2027-01-21", "\"2028-01-21")
            .replace("\"2026-", "\"2027-")
            .replace("JHNDOE00A01F205N", "RSSMRA85T10A562S");
        let (r, outcome) = load_bytes(&store, &builtin("gpd-json"), None, json.into_bytes()).await;
        let report = r.unwrap();
        assert_eq!(report.status, "LOADED", "{backend:?} {:?}", report.errors);
        let p = store
            .get_position(A, "IUPD-WEBINAR-1")
            .await
            .unwrap()
            .position;
        assert_eq!(
            p.options[0].iuv.as_deref(),
            Some(iuv.as_str()),
            "the application's IUV is kept"
        );
        // The outcome is the same GPD document, with the option's nav set.
        let doc: serde_json::Value = serde_json::from_slice(&outcome).unwrap();
        assert_eq!(
            doc["paymentPositions"][0]["paymentOption"][0]["nav"],
            format!("3{iuv}")
        );
        assert_eq!(doc["paymentPositions"][0]["fullName"], "John Doe");
        assert_eq!(p.options[0].amount, Cents(8_000));
    }
}

#[tokio::test]
async fn legacy_fixed_width_windows_1252() {
    fn line(code: &str, cf: &str, name: &str, causale: &str, cents: i64, date: &str) -> String {
        format!(
            "{code:<12}{cf:<16}{name:<40}{causale:<50}{cents:011}{date:<8}{:<10}{:<18}\r\n",
            "TARI", ""
        )
    }
    for backend in backends() {
        let store = store(backend).await;
        let mut text = String::new();
        text += &line(
            "LEG-0001",
            "RSSMRA85T10A562S",
            "Niccolò Dell'Università",
            "Tassa rifiuti - più servizi",
            12_345,
            "20271231",
        );
        text += &line(
            "LEG-0002",
            "RSSMRA85T10A562S",
            "Zoë Rè",
            "Tassa rifiuti",
            9_900,
            "20271231",
        );
        text += "LEG-0003    RSSMRA85T10A562S troncata\r\n";
        // Trailing blanks trimmed by some transfer tool: still a full record.
        text += &format!(
            "{}\r\n",
            line(
                "LEG-0004",
                "RSSMRA85T10A562S",
                "Zoë Rè",
                "Tassa rifiuti",
                500,
                "20271231"
            )
            .trim_end()
        );
        let bytes = encoding_rs::WINDOWS_1252.encode(&text).0.into_owned();
        assert!(std::str::from_utf8(&bytes).is_err(), "really Windows-1252");
        let (r, outcome) = load_bytes(&store, &builtin("legacy-fixed"), None, bytes).await;
        let report = r.unwrap();
        assert_eq!(report.status, "LOADED_WITH_ERRORS", "{backend:?}");
        assert_eq!(report.positions_created, 3, "{:?}", report.errors);
        assert_eq!(report.errors.len(), 1);
        assert_eq!(
            (report.errors[0].line, report.errors[0].code),
            (3, "TRUNCATED_LINE")
        );
        let p = store.get_position(A, "LEG-0001").await.unwrap().position;
        assert_eq!(p.debtor.full_name, "Niccolò Dell'Università");
        assert_eq!(p.options[0].amount, Cents(12_345));
        // The outcome is fixed width and Windows-1252 too, with the notice number in place.
        let out = encoding_rs::WINDOWS_1252.decode(&outcome).0.into_owned();
        let first = out.lines().next().unwrap();
        let placed: String = first.chars().skip(147).take(18).collect();
        assert_eq!(
            placed,
            p.options[0].notice_number.as_ref().unwrap().as_str()
        );
        assert!(first.contains("Niccolò"));
    }
}

#[tokio::test]
async fn bad_rows_are_reported_with_line_field_and_reason() {
    let csv = "codice;servizio;codice_fiscale;nominativo;rata;importo;causale;scadenza;iuv;accertamento;operazione
OK-1;TARI;RSSMRA85T10A562S;Mario Rossi;0;10,00;ok;31/12/2027;;;
BAD-AMOUNT;TARI;RSSMRA85T10A562S;Mario Rossi;0;dieci;x;31/12/2027;;;
BAD-DATE;TARI;RSSMRA85T10A562S;Mario Rossi;0;10,00;x;31/13/2027;;;
BAD-CF;TARI;RSSMRA85T10A562X;Mario Rossi;0;10,00;x;31/12/2027;;;
BAD-SERVICE;NOPE;RSSMRA85T10A562S;Mario Rossi;0;10,00;x;31/12/2027;;;
RAGGED;TARI;RSSMRA85T10A562S
OK-2;TARI;RSSMRA85T10A562S;Mario Rossi;0;10,00;ok;31/12/2027;;;
OK-1;TARI;RSSMRA85T10A562S;Mario Rossi;1;10,00;again;31/12/2027;;;
BAD-OP;TARI;RSSMRA85T10A562S;Mario Rossi;0;10,00;x;31/12/2027;;;Z
";
    for backend in backends() {
        let store = store(backend).await;
        // All or nothing (incasso-csv's default): nothing is written.
        let (r, _) = load_bytes(
            &store,
            &builtin("incasso-csv"),
            None,
            csv.as_bytes().to_vec(),
        )
        .await;
        let report = r.unwrap();
        assert_eq!(report.status, "REJECTED");
        assert_eq!(
            count(&store).await,
            0,
            "{backend:?}: a refused supply wrote something"
        );
        let got: Vec<(usize, &str)> = report.errors.iter().map(|e| (e.line, e.code)).collect();
        for expected in [
            (3, "BAD_AMOUNT"),
            (4, "BAD_DATE"),
            (5, "BAD_FISCAL_CODE"),
            (6, "UNKNOWN_SERVICE"),
            (7, "RAGGED_LINE"),
            (9, "DUPLICATE_KEY"),
            (10, "BAD_OPERATION"),
        ] {
            assert!(got.contains(&expected), "missing {expected:?} in {got:?}");
        }
        assert!(report.errors.iter().all(|e| !e.message.is_empty()));
        // The same rows with partial loading: the good ones go in.
        let mut layout = builtin("incasso-csv");
        layout.all_or_nothing = false;
        let (r, _) = load_bytes(&store, &layout, None, csv.as_bytes().to_vec()).await;
        let report = r.unwrap();
        assert_eq!(report.status, "LOADED_WITH_ERRORS");
        assert_eq!(report.positions_created, 2);
        assert_eq!(count(&store).await, 2);
        // Stored report, downloadable as CSV.
        let supply = store.supply(A, report.supply_id.unwrap()).await.unwrap();
        let csv_report = String::from_utf8(supply::report_csv(&supply.errors)).unwrap();
        assert!(csv_report.starts_with("riga;campo;valore;codice;messaggio"));
        assert!(
            csv_report.contains("3;importo;dieci;BAD_AMOUNT;"),
            "{csv_report}"
        );
        // Update or cancel a paid position: refused on its row.
        let nav = store
            .get_position(A, "OK-2")
            .await
            .unwrap()
            .position
            .options[0]
            .notice_number
            .clone()
            .unwrap();
        store
            .mark_option_paid(A, nav.as_str(), Utc::now(), Utc::now())
            .await
            .unwrap();
        let update = "codice;servizio;codice_fiscale;nominativo;rata;importo;causale;scadenza;iuv;accertamento;operazione
OK-2;TARI;RSSMRA85T10A562S;Mario Rossi;0;20,00;new;31/12/2027;;;M
OK-1;TARI;RSSMRA85T10A562S;Mario Rossi;0;10,00;;31/12/2027;;;A
";
        let (r, _) = load_bytes(&store, &layout, None, update.as_bytes().to_vec()).await;
        let report = r.unwrap();
        assert_eq!(report.errors.len(), 1);
        assert_eq!(
            (report.errors[0].line, report.errors[0].code),
            (2, "ALREADY_PAID")
        );
        assert_eq!(report.positions_cancelled, 1);
        assert_eq!(
            store.get_position(A, "OK-1").await.unwrap().position.status,
            PositionStatus::Invalid
        );
        // An update resent without IUVs keeps the position's notice numbers.
        let plan = "codice;servizio;codice_fiscale;nominativo;rata;importo;causale;scadenza;iuv;accertamento;operazione
PLAN-1;TARI;RSSMRA85T10A562S;Mario Rossi;1;10,00;r1;31/12/2027;;;
PLAN-1;TARI;RSSMRA85T10A562S;Mario Rossi;2;10,00;r2;31/12/2027;;;
";
        let (r, _) = load_bytes(&store, &layout, None, plan.as_bytes().to_vec()).await;
        assert_eq!(r.unwrap().positions_created, 1);
        let navs: Vec<_> = store
            .get_position(A, "PLAN-1")
            .await
            .unwrap()
            .position
            .options
            .iter()
            .map(|o| o.notice_number.clone())
            .collect();
        let (r, _) = load_bytes(
            &store,
            &layout,
            None,
            plan.replace(";;;\n", ";;;M\n")
                .replace("r1", "r1 bis")
                .into_bytes(),
        )
        .await;
        assert_eq!(r.unwrap().positions_updated, 1);
        let after = store.get_position(A, "PLAN-1").await.unwrap().position;
        assert_eq!(
            after
                .options
                .iter()
                .map(|o| o.notice_number.clone())
                .collect::<Vec<_>>(),
            navs,
            "{backend:?}"
        );
        assert_eq!(after.options[0].description, "r1 bis");
        // One bad row of a position refuses the whole position, not just the row.
        let half = "codice;servizio;codice_fiscale;nominativo;rata;importo;causale;scadenza;iuv;accertamento;operazione
HALF-1;TARI;RSSMRA85T10A562S;Mario Rossi;1;10,00;r1;31/12/2027;;;
HALF-1;TARI;RSSMRA85T10A562S;Mario Rossi;2;dieci;r2;31/12/2027;;;
HALF-1;TARI;RSSMRA85T10A562S;Mario Rossi;3;10,00;r3;31/12/2027;;;
OTHER-9;TARI;RSSMRA85T10A562S;Mario Rossi;0;10,00;ok;31/12/2027;;;
";
        let (r, _) = load_bytes(&store, &layout, None, half.as_bytes().to_vec()).await;
        let report = r.unwrap();
        assert_eq!(report.positions_created, 1, "{:?}", report.errors);
        assert!(
            store.get_position(A, "HALF-1").await.is_err(),
            "no position with a missing installment"
        );
        assert!(
            report
                .errors
                .iter()
                .any(|e| e.code == "INCOMPLETE_POSITION" && e.line == 2)
        );
        // A NUL byte: refused on its row (PostgreSQL could not store it).
        let nul = "codice;servizio;codice_fiscale;nominativo;rata;importo;causale;scadenza;iuv;accertamento;operazione\nNUL-1;TARI;RSSMRA85T10A562S;Ma\0rio;0;10,00;x;31/12/2027;;;\n";
        let (r, _) = load_bytes(&store, &layout, None, nul.as_bytes().to_vec()).await;
        let report = r.unwrap();
        assert_eq!(
            (report.errors[0].line, report.errors[0].code),
            (2, "BAD_CHARACTER")
        );
        // Rows of one position asking for different operations: refused, on
        // the row that disagrees, and nothing of the position is cancelled.
        let mixed = "codice;servizio;codice_fiscale;nominativo;rata;importo;causale;scadenza;iuv;accertamento;operazione
PLAN-1;TARI;RSSMRA85T10A562S;Mario Rossi;1;10,00;r1;31/12/2027;;;M
PLAN-1;TARI;RSSMRA85T10A562S;Mario Rossi;2;10,00;r2;31/12/2027;;;A
";
        let (r, _) = load_bytes(&store, &layout, None, mixed.as_bytes().to_vec()).await;
        let report = r.unwrap();
        assert_eq!(
            (report.positions_updated, report.positions_cancelled),
            (0, 0),
            "{:?}",
            report.errors
        );
        assert!(
            report
                .errors
                .iter()
                .any(|e| e.code == "MIXED_OPERATION" && e.line == 3),
            "{:?}",
            report.errors
        );
        assert_ne!(
            store
                .get_position(A, "PLAN-1")
                .await
                .unwrap()
                .position
                .status,
            PositionStatus::Invalid
        );
        // A UTF-8 layout given Windows-1252 bytes: the wrong encoding, on its row.
        let latin = encoding_rs::WINDOWS_1252
            .encode("codice;servizio;codice_fiscale;nominativo;rata;importo;causale;scadenza;iuv;accertamento;operazione\nENC-1;TARI;RSSMRA85T10A562S;Niccolò;0;10,00;x;31/12/2027;;;\n")
            .0
            .into_owned();
        let (r, _) = load_bytes(&store, &layout, None, latin).await;
        let report = r.unwrap();
        assert_eq!(
            (report.errors[0].line, report.errors[0].code),
            (2, "WRONG_ENCODING")
        );
    }
}

/// The same over HTTP: upload (202 and a status URL, as GPD's massive
/// upload), report, outcome, the Ente's own layouts, the export.
#[tokio::test]
async fn supplies_over_http() {
    for backend in backends() {
        supplies_over_http_on(backend).await;
    }
}

async fn supplies_over_http_on(backend: Backend) {
    // Shown with a failure, which otherwise would not say which database.
    eprintln!("supplies_over_http on {backend:?}");
    incasso_pagopa::connector::install_crypto_provider();
    let url = fresh_database_url(backend).await;
    let store = store_at(&url).await;
    let (_, key) =
        incasso_app::keys::issue_key(&store, Some(A), incasso_store::KeyScope::Ente, "test")
            .await
            .unwrap();
    let serve = |store: Store| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(incasso_server::serve_with_listener(
            listener,
            store,
            std::future::pending(),
        ));
        base
    };
    let base = serve(store.clone()).await;
    // A second server with its own connections to the same database, as a
    // second process would have.
    let other_base = serve(Store::connect(&url).await.unwrap()).await;
    let http = reqwest::Client::new();
    let get = |path: String| {
        http.get(format!("{base}{path}"))
            .header("Ocp-Apim-Subscription-Key", &key)
            .send()
    };
    // An Ente's own layout: incasso-csv with ',' and decimal dots.
    let own = incasso_bus::builtin::get("incasso-csv").unwrap().unwrap();
    let mut own = own;
    own.name = "tributi-csv".into();
    own.format = incasso_bus::layout::Format::Delimited {
        zipped: false,
        separator: ',',
        quote: '"',
        header: true,
        columns: vec![],
    };
    own.fields.get_mut("option.amount").unwrap().amount =
        Some(incasso_bus::layout::AmountFormat::Dot);
    let toml_text = toml::to_string(&own).unwrap();
    let resp = http
        .put(format!("{base}/api/v1/enti/{A}/layouts/tributi-csv"))
        .header("Ocp-Apim-Subscription-Key", &key)
        .body(toml_text.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let bad = http
        .put(format!("{base}/api/v1/enti/{A}/layouts/tributi-csv"))
        .header("Ocp-Apim-Subscription-Key", &key)
        .body("name = \"tributi-csv\"\nversion = 1\nkey = []\n")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let layouts: serde_json::Value = get(format!("/api/v1/enti/{A}/layouts"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        layouts
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["name"] == "tributi-csv" && l["version"] == "1"),
        "{layouts}"
    );
    assert!(
        layouts
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["name"] == "gpd-json" && l["version"] == "builtin")
    );
    let file = "codice,servizio,codice_fiscale,nominativo,rata,importo,causale,scadenza,iuv,accertamento,operazione\nH-1,TARI,RSSMRA85T10A562S,Mario Rossi,0,12.50,TARI,31/12/2027,,,\nH-2,TARI,RSSMRA85T10A562X,Mario Rossi,0,12.50,TARI,31/12/2027,,,\n";
    let upload = |body: &'static str| {
        http.post(format!(
            "{base}/api/v1/enti/{A}/supplies?layout=tributi-csv&fileName=tributi.csv"
        ))
        .header("Ocp-Apim-Subscription-Key", &key)
        .body(body)
        .send()
    };
    let resp = upload(file).await.unwrap();
    assert_eq!(resp.status(), 202);
    let status_url = resp.headers()["location"].to_str().unwrap().to_string();
    let answer: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(answer["statusUrl"], status_url.as_str());
    // The status URL is the supply itself, read from the database: the
    // other server answers it too.
    let mut job = serde_json::Value::Null;
    for _ in 0..100 {
        job = http
            .get(format!("{other_base}{status_url}"))
            .header("Ocp-Apim-Subscription-Key", &key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if job["status"] != "LOADING" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // tributi-csv inherits all-or-nothing: the bad fiscal code refuses it whole.
    assert_eq!(job["status"], "REJECTED", "{job}");
    let id = job["id"].as_i64().unwrap();
    let report = get(format!("/api/v1/enti/{A}/supplies/{id}/report.csv"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(report.contains("3;fiscalCode;;BAD_FISCAL_CODE"), "{report}");
    // Fixed, it loads; its outcome comes back with the notice number.
    let fixed = file.replace("RSSMRA85T10A562X", "RSSMRA85T10A562S");
    let resp = upload(Box::leak(fixed.into_boxed_str())).await.unwrap();
    let status_url = resp.headers()["location"].to_str().unwrap().to_string();
    for _ in 0..100 {
        job = get(status_url.clone()).await.unwrap().json().await.unwrap();
        if job["status"] != "LOADING" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(job["status"], "LOADED", "{job}");
    let id = job["id"].as_i64().unwrap();
    let supply: serde_json::Value = get(format!("/api/v1/enti/{A}/supplies/{id}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(supply["positionsCreated"], 2);
    let outcome = get(format!("/api/v1/enti/{A}/supplies/{id}/outcome"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        outcome.lines().next().unwrap().ends_with(",numero_avviso"),
        "{outcome}"
    );
    assert!(
        outcome.lines().nth(1).unwrap().contains(",3010"),
        "{outcome}"
    );
    // Unknown layout, oversized upload.
    let resp = http
        .post(format!("{base}/api/v1/enti/{A}/supplies?layout=nope"))
        .header("Ocp-Apim-Subscription-Key", &key)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let huge = vec![b'x'; incasso_server::bus_api::MAX_SUPPLY_BYTES + 1];
    let resp = http
        .post(format!(
            "{base}/api/v1/enti/{A}/supplies?layout=incasso-csv"
        ))
        .header("Ocp-Apim-Subscription-Key", &key)
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    // The export through HTTP (nothing paid yet: header only).
    let resp = get(format!(
        "/api/v1/enti/{A}/exports/tributi-csv?consumer=ufficio"
    ))
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-payments"], "0");
}

/// Files dropped in the inbox folder are loaded once complete, then moved to
/// done/ or rejected/ with their report and outcome; payments come back in
/// the outbox.
#[tokio::test]
async fn inbox_and_outbox_folders() {
    for backend in backends() {
        let store = store(backend).await;
        let data = std::env::temp_dir().join(format!(
            "incasso-inbox-{}-{}",
            std::process::id(),
            Utc::now().timestamp_micros()
        ));
        let inbox = data.join("inbox").join(A).join("incasso-csv");
        std::fs::create_dir_all(&inbox).unwrap();
        std::fs::write(inbox.join("tari.csv"), INCASSO_CSV).unwrap();
        std::fs::write(inbox.join("upload.csv.part"), "still uploading").unwrap();
        let bad = INCASSO_CSV
            .replace("RSSMRA85T10A562S;Maria", "RSSMRA85T10A562X;Maria")
            .replace("TARI-001", "OTHER-001")
            .replace("MENSA-7", "OTHER-7");
        std::fs::write(inbox.join("bad.csv"), bad).unwrap();
        let mut seen = incasso_app::inbox::Seen::default();
        // First scan: sizes noted, nothing taken (a file may still be growing).
        assert!(
            incasso_app::inbox::scan_once(&store, &data, &mut seen)
                .await
                .is_empty()
        );
        let processed = incasso_app::inbox::scan_once(&store, &data, &mut seen).await;
        assert_eq!(processed.len(), 2, "{backend:?}: {processed:?}");
        assert!(inbox.join("done/tari.csv").exists() && inbox.join("done/tari.csv.esito").exists());
        assert!(
            inbox.join("rejected/bad.csv").exists()
                && inbox.join("rejected/bad.csv.rapporto.csv").exists()
        );
        assert!(
            inbox.join("upload.csv.part").exists(),
            "partial uploads are left alone"
        );
        assert_eq!(count(&store).await, 2);
        // The same file dropped again: refused, explained, not loaded twice.
        std::fs::write(inbox.join("tari-again.csv"), INCASSO_CSV).unwrap();
        incasso_app::inbox::scan_once(&store, &data, &mut seen).await;
        let processed = incasso_app::inbox::scan_once(&store, &data, &mut seen).await;
        assert_eq!(
            processed,
            vec![incasso_app::inbox::Processed {
                file: inbox.join("tari-again.csv"),
                accepted: false
            }]
        );
        assert!(
            std::fs::read_to_string(inbox.join("rejected/tari-again.csv.errore.txt"))
                .unwrap()
                .contains("già caricato")
        );
        assert_eq!(count(&store).await, 2);
        // A payment goes out through the outbox, once.
        let p = store.get_position(A, "MENSA-7").await.unwrap().position;
        let nav = p.options[0].notice_number.clone().unwrap();
        let mut receipt = receipt(
            "rt-outbox",
            nav.as_str(),
            p.options[0].iuv.clone().unwrap(),
            123_456,
        );
        store
            .record_receipt(&receipt, Utc::now() - chrono::Duration::seconds(5))
            .await
            .unwrap();
        let written = incasso_app::inbox::export_once(&store, &data).await;
        assert_eq!(written.len(), 1);
        let text = std::fs::read_to_string(&written[0]).unwrap();
        assert!(
            text.contains(&format!("MENSA-7;{}", nav.as_str())) && text.contains("1.234,56"),
            "{text}"
        );
        assert!(
            incasso_app::inbox::export_once(&store, &data)
                .await
                .is_empty(),
            "nothing new, no file"
        );
        receipt.receipt_id = "unused".into();
        // Start-up recovery puts back what a dead process left in
        // `processing/`, but not a file a live process holds locked.
        let processing = inbox.join("processing");
        std::fs::create_dir_all(&processing).unwrap();
        std::fs::write(processing.join("loading.csv"), INCASSO_CSV).unwrap();
        std::fs::write(processing.join("orphan.csv"), INCASSO_CSV).unwrap();
        let loading = std::fs::File::open(processing.join("loading.csv")).unwrap();
        loading.lock().unwrap();
        incasso_app::inbox::recover(&data);
        assert!(
            processing.join("loading.csv").exists(),
            "a live load is left alone"
        );
        assert!(inbox.join("orphan.csv").exists() && !processing.join("orphan.csv").exists());
        drop(loading);
        incasso_app::inbox::recover(&data);
        assert!(
            inbox.join("loading.csv").exists(),
            "its process is gone: put back"
        );
        let _ = std::fs::remove_dir_all(&data);
    }
}

/// The (codice, numero_avviso) rows of a spreadsheet outcome, read back as
/// the application would.
fn sheet_outcome(bytes: Vec<u8>) -> Vec<(String, String)> {
    let mut layout = builtin("incasso-csv");
    layout.format = incasso_bus::layout::Format::Spreadsheet {
        sheet: None,
        header_row: 1,
    };
    incasso_bus::read::records(&layout, std::io::Cursor::new(bytes))
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            (
                r.get("codice").unwrap_or_default().to_string(),
                r.get("numero_avviso").unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in files {
        w.start_file(*name, opts).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

const MYPAY_HEADER: &str = "IUD;codIuv;tipoIdentificativoUnivoco;codiceIdentificativoUnivoco;anagraficaPagatore;indirizzoPagatore;civicoPagatore;capPagatore;localitaPagatore;provinciaPagatore;nazionePagatore;mailPagatore;dataEsecuzionePagamento;importoDovuto;commissioneCaricoPa;tipoDovuto;tipoVersamento;causaleVersamento;datiSpecificiRiscossione;bilancio;flgGeneraIuv;flagMultiBeneficiario;codiceFiscaleEnteSecondario;azione";

/// MyPay 1_4: a ZIP of one `;` CSV, with the `bilancio` split; and a zip
/// bomb refused before anything is inflated.
#[tokio::test]
async fn mypay_zipped_supply_and_zip_bombs() {
    for backend in backends() {
        let store = store(backend).await;
        store
            .put_accertamento(
                A,
                &Accertamento {
                    year: 2027,
                    code: "ACC-MENSA".into(),
                    description: "Mensa".into(),
                    chapter: "3010".into(),
                    article: None,
                    siope_code: None,
                    active: true,
                },
            )
            .await
            .unwrap();
        let bilancio = "<bilancio><capitolo><codCapitolo>3010</codCapitolo><codUfficio>SCUOLA</codUfficio><accertamento><codAccertamento>ACC-MENSA</codAccertamento><importo>40.00</importo></accertamento></capitolo></bilancio>";
        let csv = format!(
            "{MYPAY_HEADER}\nIUD-1;;F;RSSMRA85T10A562S;Mario Rossi;Via Roma;1;00100;Roma;RM;IT;m@example.org;2027-06-30;40.00;;MENSA;ALL;Mensa giugno;9/0101101IM/;{bilancio};1;false;;I\n\
             IUD-2;;F;RSSMRA85T10A562S;Mario Rossi;Via Roma;1;00100;Roma;RM;IT;m@example.org;2027-06-30;40.00;;MENSA;ALL;Mensa luglio;9/0101101IM/;<bilancio><capitolo><accertamento><codAccertamento>ACC-MENSA</codAccertamento><importo>30.00</importo></accertamento></capitolo></bilancio>;1;false;;I\n"
        );
        let zipped = zip_of(&[("dovuti.csv", csv.as_bytes())]);
        let (r, outcome) = load_bytes(&store, &builtin("mypay-1_4"), None, zipped).await;
        let report = r.unwrap();
        assert_eq!(
            report.positions_created, 1,
            "{backend:?} {:?}",
            report.errors
        );
        // The second dovuto's bilancio does not add up to its amount: reported.
        assert_eq!(
            (report.errors[0].line, report.errors[0].code),
            (3, "QUOTAS_MISMATCH")
        );
        let p = store.get_position(A, "IUD-1").await.unwrap().position;
        let q = &p.options[0].transfers[0].quotas;
        assert_eq!(
            (
                q[0].accertamento.code.as_str(),
                q[0].accertamento.year,
                q[0].amount
            ),
            ("ACC-MENSA", 2027, Cents(4_000))
        );
        // The outcome comes back zipped, as the supply came, under the same
        // name.
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(outcome)).unwrap();
        assert_eq!(archive.len(), 1);
        let mut entry = archive.by_index(0).unwrap();
        assert_eq!(entry.name().unwrap(), "dovuti.csv");
        let mut out = String::new();
        std::io::Read::read_to_string(&mut entry, &mut out).unwrap();
        assert!(
            out.lines()
                .nth(1)
                .unwrap()
                .starts_with(&format!("IUD-1;{}", p.options[0].iuv.clone().unwrap())),
            "{out}"
        );
        // Two files in the ZIP, or none: not a MyPay supply.
        let two = zip_of(&[("a.csv", csv.as_bytes()), ("b.csv", csv.as_bytes())]);
        let (r, _) = load_bytes(&store, &builtin("mypay-1_4"), None, two).await;
        assert!(r.unwrap_err().to_string().contains("un solo file"));
        // A zip bomb: 64 MiB of zeros in a few KiB; refused from the directory alone.
        let zeros = vec![0u8; 64 * 1024 * 1024];
        let bomb = zip_of(&[("dovuti.csv", &zeros)]);
        assert!(bomb.len() < 1024 * 1024);
        let (r, _) = load_bytes(&store, &builtin("mypay-1_4"), None, bomb.clone()).await;
        let err = r.unwrap_err().to_string();
        assert!(err.contains("zip bomb"), "{err}");
        // The same guard protects spreadsheets (an XLSX is a ZIP).
        let mut sheet = builtin("incasso-csv");
        sheet.format = incasso_bus::layout::Format::Spreadsheet {
            sheet: None,
            header_row: 1,
        };
        let (r, _) = load_bytes(&store, &sheet, None, bomb).await;
        assert!(r.unwrap_err().to_string().contains("zip bomb"));
    }
}

/// An ODS spreadsheet (the format LibreOffice saves), read through a layout
/// with `kind = "spreadsheet"`.
#[tokio::test]
async fn ods_spreadsheet_supply() {
    let cell = |v: &str| {
        format!(
            "<table:table-cell office:value-type=\"string\"><text:p>{v}</text:p></table:table-cell>"
        )
    };
    let num = |v: f64| {
        format!(
            "<table:table-cell office:value-type=\"float\" office:value=\"{v}\"><text:p>{v}</text:p></table:table-cell>"
        )
    };
    let row = |cells: Vec<String>| format!("<table:table-row>{}</table:table-row>", cells.concat());
    let header = [
        "codice",
        "servizio",
        "codice_fiscale",
        "nominativo",
        "rata",
        "importo",
        "causale",
        "scadenza",
    ];
    let mut rows = vec![row(header.iter().map(|h| cell(h)).collect())];
    rows.push(row(vec![
        cell("ODS-1"),
        cell("TARI"),
        cell("RSSMRA85T10A562S"),
        cell("Mario Rossi"),
        num(0.0),
        num(123.45),
        cell("TARI"),
        cell("31/12/2027"),
    ]));
    rows.push(row(vec![
        cell("ODS-2"),
        cell("TARI"),
        cell("RSSMRA85T10A562S"),
        cell("Mario Rossi"),
        num(0.0),
        num(10.0),
        cell("TARI"),
        cell("31/12/2027"),
    ]));
    let content = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body><office:spreadsheet><table:table table:name="Foglio1">{}</table:table></office:spreadsheet></office:body></office:document-content>"#,
        rows.concat()
    );
    let manifest = r#"<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#;
    let ods = zip_of(&[
        (
            "mimetype",
            b"application/vnd.oasis.opendocument.spreadsheet",
        ),
        ("content.xml", content.as_bytes()),
        ("META-INF/manifest.xml", manifest.as_bytes()),
    ]);
    let mut layout = builtin("incasso-csv");
    layout.format = incasso_bus::layout::Format::Spreadsheet {
        sheet: None,
        header_row: 1,
    };
    layout.fields.get_mut("option.amount").unwrap().amount =
        Some(incasso_bus::layout::AmountFormat::Dot);
    for backend in backends() {
        let store = store(backend).await;
        let (r, outcome) = load_bytes(&store, &layout, None, ods.clone()).await;
        let report = r.unwrap();
        assert_eq!(
            report.positions_created, 2,
            "{backend:?} {:?}",
            report.errors
        );
        // The outcome is a workbook with the notice numbers filled in.
        let navs = sheet_outcome(outcome);
        assert_eq!(navs.len(), 2, "{navs:?}");
        for (code, nav) in &navs {
            let stored = store.get_position(A, code).await.unwrap().position;
            assert_eq!(
                Some(nav.as_str()),
                stored.options[0].notice_number.as_ref().map(|n| n.as_str()),
                "{backend:?}"
            );
        }
        assert_eq!(
            store
                .get_position(A, "ODS-1")
                .await
                .unwrap()
                .position
                .options[0]
                .amount,
            Cents(12_345)
        );
        // Not a spreadsheet at all: refused whole, saying so.
        let (r, _) = load_bytes(&store, &layout, None, b"codice;importo\n".to_vec()).await;
        assert!(
            r.unwrap_err()
                .to_string()
                .contains("non corrisponde al tracciato")
        );
    }
}

/// An XLSX spreadsheet (the format Excel saves), the smallest valid one.
#[tokio::test]
async fn xlsx_spreadsheet_supply() {
    let cols = ["A", "B", "C", "D", "E", "F", "G", "H"];
    let text_cell = |r: usize, c: usize, v: &str| {
        format!(
            r#"<c r="{}{r}" t="inlineStr"><is><t>{v}</t></is></c>"#,
            cols[c]
        )
    };
    let num_cell = |r: usize, c: usize, v: f64| format!(r#"<c r="{}{r}"><v>{v}</v></c>"#, cols[c]);
    let header = [
        "codice",
        "servizio",
        "codice_fiscale",
        "nominativo",
        "rata",
        "importo",
        "causale",
        "scadenza",
    ];
    let mut rows = format!(
        r#"<row r="1">{}</row>"#,
        header
            .iter()
            .enumerate()
            .map(|(c, h)| text_cell(1, c, h))
            .collect::<String>()
    );
    for (r, (code, amount)) in [(2usize, ("XL-1", 99.9)), (3, ("XL-2", 1234.56))] {
        rows += &format!(
            r#"<row r="{r}">{}{}{}{}{}{}{}{}</row>"#,
            text_cell(r, 0, code),
            text_cell(r, 1, "TARI"),
            text_cell(r, 2, "RSSMRA85T10A562S"),
            text_cell(r, 3, "Mario Rossi"),
            num_cell(r, 4, 0.0),
            num_cell(r, 5, amount),
            text_cell(r, 6, "TARI 2027"),
            text_cell(r, 7, "31/12/2027"),
        );
    }
    let sheet = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{rows}</sheetData></worksheet>"#
    );
    let xlsx = zip_of(&[
        ("[Content_Types].xml", br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#),
        ("_rels/.rels", br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#),
        ("xl/workbook.xml", br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Foglio1" sheetId="1" r:id="rId1"/></sheets></workbook>"#),
        ("xl/_rels/workbook.xml.rels", br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#),
        ("xl/worksheets/sheet1.xml", sheet.as_bytes()),
    ]);
    let mut layout = builtin("incasso-csv");
    layout.format = incasso_bus::layout::Format::Spreadsheet {
        sheet: Some("Foglio1".into()),
        header_row: 1,
    };
    layout.fields.get_mut("option.amount").unwrap().amount =
        Some(incasso_bus::layout::AmountFormat::Dot);
    for backend in backends() {
        let store = store(backend).await;
        let (r, outcome) = load_bytes(&store, &layout, None, xlsx.clone()).await;
        let report = r.unwrap();
        assert_eq!(
            report.positions_created, 2,
            "{backend:?} {:?}",
            report.errors
        );
        let navs = sheet_outcome(outcome);
        assert_eq!(
            navs.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(),
            ["XL-1", "XL-2"]
        );
        for (code, nav) in &navs {
            let stored = store.get_position(A, code).await.unwrap().position;
            assert_eq!(
                Some(nav.as_str()),
                stored.options[0].notice_number.as_ref().map(|n| n.as_str()),
                "{backend:?}"
            );
        }
        assert_eq!(
            store
                .get_position(A, "XL-2")
                .await
                .unwrap()
                .position
                .options[0]
                .amount,
            Cents(123_456)
        );
        assert_eq!(
            store
                .get_position(A, "XL-1")
                .await
                .unwrap()
                .position
                .options[0]
                .amount,
            Cents(9_990)
        );
    }
}

/// Fails every write once `budget` bytes have gone through: an outcome
/// file on a disk that fills up halfway through a load.
struct FailingWriter {
    budget: usize,
    written: Vec<u8>,
}

impl std::io::Write for FailingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.written.len() + buf.len() > self.budget {
            return Err(std::io::Error::other("disco pieno"));
        }
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A layout that loads the valid rows commits as it goes: interrupted
/// halfway, its committed part stays, with a checkpoint; the same file sent
/// again resumes there and loads the rest, never a row twice; the outcome
/// of the resumed load covers the whole file. While a load holds the file,
/// another is refused.
#[tokio::test]
async fn an_interrupted_partial_load_resumes_and_never_loads_twice() {
    for backend in backends() {
        let store = store(backend).await;
        let mut layout = builtin("incasso-csv");
        layout.name = "tributi-parziale".into();
        layout.all_or_nothing = false;
        layout.checkpoint_rows = 10_000;
        let rows = 25_000;
        let mut text = String::from(
            "codice;servizio;codice_fiscale;nominativo;rata;importo;causale;scadenza;iuv;accertamento;operazione\n",
        );
        for i in 0..rows {
            let cf = incasso_core::sample::personal_fiscal_code(i);
            text.push_str(&format!(
                "R-{i:06};TARI;{cf};Contribuente {i};0;12,34;TARI 2027;31/12/2027;;;\n"
            ));
        }
        let bytes = text.into_bytes();
        let open = {
            let bytes = bytes.clone();
            move || -> std::io::Result<Box<dyn std::io::Read + Send>> {
                Ok(Box::new(std::io::Cursor::new(bytes.clone())))
            }
        };
        // The outcome's disk fills up after about 15,000 rows.
        let mut failing = FailingWriter {
            budget: bytes.len() * 3 / 5,
            written: Vec::new(),
        };
        let file = supply::SupplyFile {
            ente: A,
            layout: &layout,
            default_service: None,
            file_name: "tributi.csv",
            open: &open,
        };
        let sinks = supply::Sinks {
            outcome: Some(&mut failing),
            ..supply::Sinks::none()
        };
        let first = supply::load(&store, &file, sinks).await;
        assert!(
            matches!(first, Err(LoadError::Io(_))),
            "{backend:?}: {first:?}"
        );
        // The first 10,000 rows were committed with their checkpoint; the
        // rows after it were rolled back.
        assert_eq!(count(&store).await, 10_000, "{backend:?}");
        // It says so, and how to go on.
        let hash = supply::file_hash(std::io::Cursor::new(bytes.clone()))
            .unwrap()
            .0;
        let interrupted = store.supply_of_file(A, &hash).await.unwrap().unwrap();
        assert_eq!(interrupted.record.status, "INTERRUPTED", "{backend:?}");
        assert!(interrupted.record.message.contains("rinviare il file"));
        assert_eq!(interrupted.record.rows_loaded, 10_000);
        // While a loader holds the file, nobody else loads it.
        let held = supply::prepare(&store, &file).await.unwrap();
        assert!(held.resumes(), "{backend:?}");
        let meanwhile = supply::prepare(&store, &file).await;
        assert!(
            matches!(meanwhile, Err(LoadError::InProgress)),
            "{backend:?}: {:?}",
            meanwhile.err()
        );
        let supply_id = held.supply_id;
        let status = store.supply(A, supply_id).await.unwrap();
        assert_eq!(status.status, "LOADING", "{backend:?}");
        assert_eq!(status.rows_loaded, 10_000, "{backend:?}");
        // Resumed: the rest, once.
        let mut outcome = Vec::new();
        let sinks = supply::Sinks {
            outcome: Some(&mut outcome),
            ..supply::Sinks::none()
        };
        let report = supply::run(&store, &file, held, sinks).await.unwrap();
        assert_eq!(report.supply_id, Some(supply_id), "{backend:?}");
        assert_eq!(report.status, "LOADED", "{backend:?}");
        assert_eq!(report.rows_loaded, rows as i64, "{backend:?}");
        assert_eq!(report.positions_created, rows as i64, "{backend:?}");
        assert_eq!(count(&store).await, rows, "{backend:?}");
        let outcome = String::from_utf8(outcome).unwrap();
        let navs: std::collections::HashSet<&str> = outcome
            .lines()
            .skip(1)
            .map(|l| l.split(';').nth(11).unwrap_or_default())
            .filter(|n| n.len() == 18)
            .collect();
        assert_eq!(navs.len() as u64, rows, "{backend:?}");
        let again = load_bytes(&store, &layout, None, bytes.clone()).await.0;
        assert!(
            matches!(again, Err(LoadError::Duplicate(id)) if id == supply_id),
            "{backend:?}: {again:?}"
        );
    }
}

/// The claim on a file is an OS-level lock: held, it refuses a second
/// claimer (another connection, as another process would be); dropped, it
/// is free again.
#[tokio::test]
async fn a_supply_claim_is_exclusive_until_dropped() {
    for backend in backends() {
        let url = fresh_database_url(backend).await;
        let one = Store::connect(&url).await.unwrap();
        let two = Store::connect(&url).await.unwrap();
        let claim = one.claim_supply(A, "abc").await.unwrap();
        assert!(claim.is_some(), "{backend:?}");
        assert!(
            two.claim_supply(A, "abc").await.unwrap().is_none(),
            "{backend:?}"
        );
        assert!(
            two.claim_supply(A, "abd").await.unwrap().is_some(),
            "{backend:?}"
        );
        drop(claim);
        let mut again = None;
        // PostgreSQL lets go when the claim's session has closed.
        for _ in 0..50 {
            again = two.claim_supply(A, "abc").await.unwrap();
            if again.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(again.is_some(), "{backend:?}");
    }
}

/// A PDF's first QR code, read as a scanner would (when the tools are here;
/// the notice crate's own tests require them).
fn scan_qr(pdf: &[u8]) -> Option<String> {
    let dir = std::env::temp_dir().join(format!("incasso-bus-qr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    std::fs::write(dir.join("n.pdf"), pdf).ok()?;
    let ok = std::process::Command::new("pdftoppm")
        .args(["-r", "150", "-png", "-f", "1", "-l", "1"])
        .arg(dir.join("n.pdf"))
        .arg(dir.join("n"))
        .status()
        .ok()?
        .success();
    let png = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "png"))?;
    let out = std::process::Command::new("zbarimg")
        .args(["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"])
        .arg(&png)
        .output()
        .ok()?;
    let _ = std::fs::remove_dir_all(&dir);
    ok.then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    })
}

/// Notices of loaded positions over HTTP: one notice number, a whole
/// position with its installments, a supply's notices as a ZIP with an
/// index; refusals with their reason (unknown, cancelled, paid); the logo.
#[tokio::test]
async fn notices_of_a_supply_over_http() {
    incasso_pagopa::connector::install_crypto_provider();
    for backend in backends() {
        let store = store(backend).await;
        let (_, key) =
            incasso_app::keys::issue_key(&store, Some(A), incasso_store::KeyScope::Ente, "test")
                .await
                .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(incasso_server::serve_with_listener(
            listener,
            store.clone(),
            std::future::pending(),
        ));
        let http = reqwest::Client::new();
        let get = |path: String| {
            http.get(format!("{base}{path}"))
                .header("Ocp-Apim-Subscription-Key", &key)
                .send()
        };
        // Three positions: a single payment, one in a single solution or
        // two installments, and one to be cancelled.
        let csv = "codice;servizio;codice_fiscale;nominativo;rata;importo;causale;scadenza;iuv;accertamento;operazione\n\
            N-1;TARI;RSSMRA85T10A562S;Mario Rossi;0;120,00;TARI 2027;31/12/2027;;;\n\
            N-2;TARI;RSSMRA85T10A562S;Mario Rossi;0;100,00;TARI 2027;31/12/2027;;;\n\
            N-2;TARI;RSSMRA85T10A562S;Mario Rossi;1;50,00;TARI 2027 rata 1;30/06/2027;;;\n\
            N-2;TARI;RSSMRA85T10A562S;Mario Rossi;2;50,00;TARI 2027 rata 2;31/12/2027;;;\n\
            N-3;TARI;RSSMRA85T10A562S;Mario Rossi;0;10,00;TARI 2027;31/12/2027;;;\n";
        let (r, _) = load_bytes(
            &store,
            &builtin("incasso-csv"),
            None,
            csv.as_bytes().to_vec(),
        )
        .await;
        let supply_id = r.unwrap().supply_id.unwrap();
        let one = store.get_position(A, "N-1").await.unwrap().position;
        let nav = one.options[0].notice_number.clone().unwrap();
        let resp = get(format!("/api/v1/enti/{A}/notices/{}/pdf", nav.as_str()))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{backend:?}");
        assert_eq!(resp.headers()["content-type"], "application/pdf");
        let pdf = resp.bytes().await.unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
        if let Some(qr) = scan_qr(&pdf) {
            assert_eq!(qr, format!("PAGOPA|002|{}|{A}|12000", nav.as_str()));
        }
        let resp = get(format!(
            "/api/v1/enti/{A}/positions/N-2/notice.pdf?lang=it-de"
        ))
        .await
        .unwrap();
        assert_eq!(resp.status(), 200);
        let resp = get(format!("/api/v1/enti/{A}/positions/N-2/notice.pdf?lang=fr"))
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        // Unknown: 404 with the reason.
        let resp = get(format!("/api/v1/enti/{A}/notices/301999999999999999/pdf"))
            .await
            .unwrap();
        assert_eq!(resp.status(), 404);
        // Cancelled (operation A of the same layout): 409, saying so.
        let cancel = "codice;servizio;codice_fiscale;nominativo;rata;importo;causale;scadenza;iuv;accertamento;operazione\nN-3;TARI;RSSMRA85T10A562S;Mario Rossi;0;10,00;TARI 2027;31/12/2027;;;A\n";
        load_bytes(
            &store,
            &builtin("incasso-csv"),
            None,
            cancel.as_bytes().to_vec(),
        )
        .await
        .0
        .unwrap();
        let resp = get(format!("/api/v1/enti/{A}/positions/N-3/notice.pdf"))
            .await
            .unwrap();
        assert_eq!(resp.status(), 409);
        let problem: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(problem["code"], "NOTICE_CANCELLED", "{problem}");
        // Paid: 409 too.
        store
            .record_receipt(
                &receipt(
                    "rt-notice",
                    nav.as_str(),
                    one.options[0].iuv.clone().unwrap(),
                    12_000,
                ),
                Utc::now(),
            )
            .await
            .unwrap();
        let resp = get(format!("/api/v1/enti/{A}/notices/{}/pdf", nav.as_str()))
            .await
            .unwrap();
        assert_eq!(resp.status(), 409);
        let problem: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(problem["code"], "NOTICE_PAID", "{problem}");
        // A logo: not an image is refused; a broken PNG is printed without.
        let put_logo = |body: Vec<u8>| {
            http.put(format!("{base}/api/v1/enti/{A}/logo"))
                .header("Ocp-Apim-Subscription-Key", &key)
                .body(body)
                .send()
        };
        assert_eq!(put_logo(b"GIF89a".to_vec()).await.unwrap().status(), 400);
        assert_eq!(
            put_logo(b"\x89PNG\r\n\x1a\nbroken".to_vec())
                .await
                .unwrap()
                .status(),
            204
        );
        let resp = get(format!("/api/v1/enti/{A}/positions/N-2/notice.pdf"))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        // The supply's notices: one PDF per printable position, and the index
        // says why the others have none.
        let zip_bytes = get(format!("/api/v1/enti/{A}/supplies/{supply_id}/notices.zip"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes.to_vec())).unwrap();
        let mut names: Vec<String> = (0..archive.len())
            .map(|i| archive.by_index(i).unwrap().name().unwrap().to_string())
            .collect();
        names.sort();
        assert_eq!(names, ["N-2.pdf", "indice.csv"], "{backend:?}");
        let mut index = String::new();
        std::io::Read::read_to_string(&mut archive.by_name("indice.csv").unwrap(), &mut index)
            .unwrap();
        assert!(
            index.contains("N-1;") && index.contains("già pagata"),
            "{index}"
        );
        assert!(
            index.contains("N-3;") && index.contains("annullata"),
            "{index}"
        );
        // By filter: a debtor's notices; a filter is required.
        let resp = get(format!(
            "/api/v1/enti/{A}/notices.zip?debtorFiscalCode=RSSMRA85T10A562S"
        ))
        .await
        .unwrap();
        assert_eq!(resp.status(), 200);
        let bytes = resp.bytes().await.unwrap().to_vec();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        assert!(archive.by_name("N-2.pdf").is_ok(), "{backend:?}");
        let resp = get(format!("/api/v1/enti/{A}/notices.zip")).await.unwrap();
        assert_eq!(resp.status(), 400);
    }
}

/// An update checked before a receipt paid its position is not applied:
/// the writer reads the position again in the supply's transaction, and the
/// supply fails rather than overwrite a payment.
#[tokio::test]
async fn an_update_never_overwrites_a_payment_made_during_the_load() {
    for backend in backends() {
        let store = store(backend).await;
        let csv = "codice;servizio;codice_fiscale;nominativo;rata;importo;causale;scadenza;iuv;accertamento;operazione\nU-1;TARI;RSSMRA85T10A562S;Mario Rossi;0;10,00;TARI 2027;31/12/2027;;;\n";
        load_bytes(
            &store,
            &builtin("incasso-csv"),
            None,
            csv.as_bytes().to_vec(),
        )
        .await
        .0
        .unwrap();
        let before = store.get_position(A, "U-1").await.unwrap().position;
        // A second supply begins and has checked U-1 (unpaid)...
        let record = incasso_store::SupplyRecord {
            layout: "incasso-csv".into(),
            file_name: "update.csv".into(),
            file_hash: "hash-of-update".into(),
            started_at: Utc::now(),
            ..Default::default()
        };
        let id = store.begin_supply(A, &record, Utc::now()).await.unwrap();
        let mut bulk = store.bulk(A, "incasso-csv", id).await.unwrap();
        // ...then a receipt pays it...
        store
            .record_receipt(
                &receipt(
                    "rt-during-load",
                    before.options[0].notice_number.clone().unwrap().as_str(),
                    before.options[0].iuv.clone().unwrap(),
                    1_000,
                ),
                Utc::now(),
            )
            .await
            .unwrap();
        // ...and the update is written.
        let mut update = before.clone();
        // As a supply's rows build it: no publication data of its own.
        update.validity_date = None;
        update.options[0].amount = Cents(2_000);
        update.options[0].transfers[0].amount = Cents(2_000);
        bulk.replace(&mut update, Utc::now()).await.unwrap();
        let committed = bulk
            .commit(
                &incasso_store::SupplyRecord {
                    status: "LOADED".into(),
                    accepted: true,
                    ..record.clone()
                },
                Utc::now(),
            )
            .await;
        assert!(committed.is_err(), "{backend:?}");
        let after = store.get_position(A, "U-1").await.unwrap().position;
        assert_eq!(after.status, PositionStatus::Paid, "{backend:?}");
        assert_eq!(after.options[0].amount, Cents(1_000));
    }
}

/// Two loaders on one supply (possible only if a claim was lost under one
/// of them): the first checkpoint wins, the other loader's fails and its
/// writes roll back.
#[tokio::test]
async fn a_checkpoint_moves_only_from_the_line_its_loader_saw() {
    for backend in backends() {
        let store = store(backend).await;
        let record = incasso_store::SupplyRecord {
            layout: "incasso-csv".into(),
            file_name: "twice.csv".into(),
            file_hash: "hash-of-twice".into(),
            started_at: Utc::now(),
            ..Default::default()
        };
        let id = store.begin_supply(A, &record, Utc::now()).await.unwrap();
        let mut one = store.bulk(A, "incasso-csv", id).await.unwrap();
        let mut two = store.bulk(A, "incasso-csv", id).await.unwrap();
        let at = |line: i64| incasso_store::SupplyRecord {
            status: "LOADING".into(),
            resume_line: line,
            ..record.clone()
        };
        one.checkpoint(&at(100), Utc::now()).await.unwrap();
        let second = two.checkpoint(&at(100), Utc::now()).await;
        assert!(second.is_err(), "{backend:?}");
        assert_eq!(store.supply(A, id).await.unwrap().resume_line, 100);
        one.checkpoint(&at(200), Utc::now()).await.unwrap();
        assert_eq!(store.supply(A, id).await.unwrap().resume_line, 200);
        one.rollback().await.unwrap();
        two.rollback().await.unwrap();
    }
}
