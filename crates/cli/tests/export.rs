//! Reporting payments back to an application, through both doors and on
//! every backend: positions loaded in the application's layout are paid
//! through the Node's SOAP interface (real receipts), then the Digit BUS
//! export over HTTP (`GET .../exports/{layout}`) and `incasso export` give
//! the same document, each payment once per consumer, whichever door the
//! consumer reads through.

use chrono::{NaiveDate, Utc};
use incasso_core::Cents;
use incasso_core::accertamento::{Accertamento, AccertamentoRef};
use incasso_core::catalogue::Service;
use incasso_core::ente::{Ente, StationLink};
use incasso_pagopa::wire::{self, Header, QrCode, Receipt, ReceiptTransfer, Subject};
use incasso_store::{KeyScope, Store};
use incasso_testkit::{Backend, backends, fresh_database_url};
use std::process::Command;
use std::time::Duration;

const A: &str = "80000130585";
const BROKER: &str = "15376371009";
const STATION: &str = "ST_01";
const IBAN: &str = "IT65B0200805364000104567891";

/// The Ente with its station, an accertamento and the TARI service (whose
/// default accertamento takes rows that name none).
async fn seed(store: &Store) {
    let now = Utc::now();
    store
        .create_ente(
            &Ente {
                fiscal_code: A.into(),
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
    store
        .put_service(
            A,
            &Service {
                code: "TARI".into(),
                name: "TARI".into(),
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

/// The supply, in incasso's own CSV layout: TARI-001 a single payment,
/// TARI-002 a single solution or two installments, TARI-003 left unpaid.
fn supply() -> String {
    let cf = incasso_core::sample::personal_fiscal_code;
    format!(
        "codice;servizio;codice_fiscale;nominativo;rata;importo;causale;scadenza;iuv;accertamento;operazione\n\
         TARI-001;TARI;{};Mario Rossi;0;150,00;TARI 2027;31/03/2027;;;\n\
         TARI-002;TARI;{};Anna Verdi;0;200,00;TARI 2027 unica;31/03/2027;;;\n\
         TARI-002;TARI;{};Anna Verdi;1;100,00;TARI 2027 rata 1;31/03/2027;;;\n\
         TARI-002;TARI;{};Anna Verdi;2;100,00;TARI 2027 rata 2;30/06/2027;;;\n\
         TARI-003;TARI;{};Luca Neri;0;80,00;TARI 2027;31/03/2027;;;\n",
        cf(1),
        cf(2),
        cf(2),
        cf(2),
        cf(3)
    )
}

/// The receipt the Node sends for one notice of A, paid at `paid_at`
/// (Italian time, as pagoPA writes it).
fn receipt(id: &str, nav: &str, cents: i64, paid_at: chrono::NaiveDateTime) -> Receipt {
    let debtor = Subject {
        kind: "F".into(),
        id: incasso_core::sample::personal_fiscal_code(1),
        full_name: "Mario Rossi".into(),
        ..Default::default()
    };
    Receipt {
        receipt_id: id.into(),
        notice_number: nav.into(),
        fiscal_code: A.into(),
        outcome: "OK".into(),
        creditor_reference_id: nav[1..].into(),
        payment_amount: Cents(cents),
        description: "TARI 2027".into(),
        company_name: "Comune di Borgo Esempio".into(),
        office_name: None,
        debtor: debtor.clone(),
        transfers: vec![ReceiptTransfer {
            id_transfer: 1,
            amount: Cents(cents),
            fiscal_code_pa: A.into(),
            company_name: None,
            iban: Some(IBAN.into()),
            remittance_information: "TARI 2027".into(),
            transfer_category: "9/0101101IM/".into(),
            metadata: vec![],
        }],
        id_psp: "BPPIITRRXXX".into(),
        psp_fiscal_code: Some("97103880585".into()),
        psp_partita_iva: None,
        psp_company_name: "Poste Italiane".into(),
        id_channel: "BPPIITRRXXX_01".into(),
        channel_description: "app".into(),
        payer: Some(debtor),
        payment_method: Some("creditCard".into()),
        payment_note: None,
        fee: Some(Cents(100)),
        primary_ci_incurred_fee: None,
        id_bundle: None,
        id_ci_bundle: None,
        payment_date_time: Some(paid_at),
        application_date: Some(paid_at.date()),
        transfer_date: None,
        metadata: vec![],
        stand_in: Some(false),
    }
}

/// Pays one notice as a PSP does through the Node: verify, getPaymentV2,
/// sendRTV2; each must answer OK.
async fn pay(http: &reqwest::Client, base: &str, nav: &str, cents: i64, r: &Receipt) {
    let header = Header {
        id_pa: A.into(),
        id_broker_pa: BROKER.into(),
        id_station: STATION.into(),
    };
    let qr = QrCode {
        fiscal_code: A.into(),
        notice_number: nav.into(),
    };
    for body in [
        wire::node::verify_request(&header, &qr),
        wire::node::get_payment_request(&header, &qr, Cents(cents), true),
        wire::node::send_rt_request(&header, r, true),
    ] {
        let text = http
            .post(format!("{base}/pagopa/paForNode"))
            .header("Content-Type", "text/xml; charset=utf-8")
            .body(body)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let answer = wire::node::parse_response(text.as_bytes()).unwrap();
        assert!(answer.is_ok(), "{nav}: {:?}", answer.fault);
    }
}

fn notice(
    store: &Store,
    rt: &tokio::runtime::Runtime,
    iupd: &str,
    option: usize,
) -> (String, String) {
    let p = rt.block_on(store.get_position(A, iupd)).unwrap().position;
    let o = &p.options[option];
    (
        o.notice_number.clone().unwrap().as_str().to_string(),
        o.iuv.clone().unwrap(),
    )
}

/// `incasso export` for A in incasso's CSV layout, as `consumer`, into
/// `output`; answers its standard error.
fn incasso_export(
    url: &str,
    dir: &std::path::Path,
    consumer: &str,
    output: &std::path::Path,
) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_incasso"))
        .args(["export", "--database-url", url, "--ente", A])
        .args(["--layout", "incasso-csv", "--consumer", consumer])
        // The data dir (where the command keeps its secret key) is the
        // test's own, never the crate's folder.
        .arg("--data-dir")
        .arg(dir)
        .arg("--output")
        .arg(output)
        .env_remove("INCASSO_DATABASE_URL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

#[test]
fn the_http_export_and_incasso_export_give_the_same_payments() {
    for backend in backends() {
        http_and_cli_export_on(backend);
    }
}

fn http_and_cli_export_on(backend: Backend) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = rt.block_on(fresh_database_url(backend));
    let store = rt.block_on(Store::connect(&url)).unwrap();
    rt.block_on(seed(&store));
    let (_, key) = rt
        .block_on(incasso_app::keys::issue_key(
            &store,
            Some(A),
            KeyScope::Ente,
            "t",
        ))
        .unwrap();
    incasso_pagopa::connector::install_crypto_provider();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(incasso_server::serve_with_listener(
        listener,
        store.clone(),
        std::future::pending(),
    ));
    let http = reqwest::Client::new();
    let ente = format!("{base}/api/v1/enti/{A}");

    // The application's supply, over HTTP.
    rt.block_on(async {
        let r = http
            .post(format!(
                "{ente}/supplies?layout=incasso-csv&fileName=tari.csv"
            ))
            .header("Ocp-Apim-Subscription-Key", &key)
            .body(supply())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{backend:?}");
        let status_url = format!("{base}{}", r.headers()["location"].to_str().unwrap());
        let mut job = serde_json::Value::Null;
        for _ in 0..200 {
            job = http
                .get(&status_url)
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
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(job["status"], "LOADED", "{backend:?}: {job}");
    });
    let (nav1, iuv1) = notice(&store, &rt, "TARI-001", 0);
    let (nav2, iuv2) = notice(&store, &rt, "TARI-002", 1);
    // A position that came through another door: paid too, but not the
    // application's to be told about.
    let other = rt
        .block_on(store.create_position(
            A,
            incasso_core::sample::position(&incasso_core::sample::PositionSpec {
                ente: A,
                company_name: "Comune di Borgo Esempio",
                iupd: "GPD-1".into(),
                debtor_index: 4,
                amount: Cents(4_200),
                description: "Mensa".into(),
                category: "9/0101101IM/",
                iban: IBAN,
                due_date: Utc::now() + chrono::Duration::days(30),
                installments: 0,
                second_beneficiary: None,
                quotas: vec![],
            }),
            Utc::now(),
            true,
        ))
        .unwrap()
        .position;
    let other_nav = other.options[0].notice_number.clone().unwrap();
    let day = NaiveDate::from_ymd_opt(2026, 10, 3).unwrap();
    rt.block_on(async {
        let paid_at = day.and_hms_opt(10, 15, 0).unwrap();
        pay(
            &http,
            &base,
            &nav1,
            15_000,
            &receipt("rt-001", &nav1, 15_000, paid_at),
        )
        .await;
        let paid_at = day.and_hms_opt(11, 30, 0).unwrap();
        pay(
            &http,
            &base,
            &nav2,
            10_000,
            &receipt("rt-002", &nav2, 10_000, paid_at),
        )
        .await;
        let nav = other_nav.as_str();
        pay(
            &http,
            &base,
            nav,
            4_200,
            &receipt("rt-gpd", nav, 4_200, paid_at),
        )
        .await;
        // Receipts younger than the export's lag (two seconds: a receipt is
        // stamped before its transaction commits) wait for the next export.
        tokio::time::sleep(Duration::from_millis(2_200)).await;
    });
    let header = "codice;numero_avviso;iuv;importo_pagato;data_pagamento;id_ricevuta;psp\n";
    let expected = format!(
        "{header}\
         TARI-001;{nav1};{iuv1};150,00;03/10/2026;rt-001;Poste Italiane\n\
         TARI-002;{nav2};{iuv2};100,00;03/10/2026;rt-002;Poste Italiane\n"
    );
    let export = |consumer: &str| {
        let http = &http;
        let ente = &ente;
        let key = &key;
        let consumer = consumer.to_string();
        rt.block_on(async move {
            let r = http
                .get(format!("{ente}/exports/incasso-csv?consumer={consumer}"))
                .header("Ocp-Apim-Subscription-Key", key)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{backend:?}");
            assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
            let count = r.headers()["x-payments"].to_str().unwrap().to_string();
            (count, r.text().await.unwrap())
        })
    };
    let (count, http_doc) = export("ragioneria");
    assert_eq!(
        (count.as_str(), http_doc.as_str()),
        ("2", expected.as_str()),
        "{backend:?}"
    );
    assert_eq!(
        export("ragioneria"),
        ("0".to_string(), header.to_string()),
        "{backend:?}: each payment once to a consumer"
    );

    // The command line, for another consumer: the same document.
    let dir = scratch_dir(backend);
    let file = dir.join("pagamenti.csv");
    let stderr = incasso_export(&url, &dir, "tributi", &file);
    assert!(stderr.contains("2 pagamenti esportati"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        http_doc,
        "{backend:?}: the two doors write the same export"
    );
    let stderr = incasso_export(&url, &dir, "tributi", &file);
    assert!(stderr.contains("0 pagamenti esportati"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), header);
    // A consumer's cursor is the same whichever door it reads through.
    assert_eq!(export("tributi"), ("0".to_string(), header.to_string()));
    let stderr = incasso_export(&url, &dir, "ragioneria", &file);
    assert!(stderr.contains("0 pagamenti esportati"), "{stderr}");

    // A later payment comes to every consumer, once.
    let (nav3, iuv3) = notice(&store, &rt, "TARI-002", 2);
    rt.block_on(async {
        let paid_at = day.and_hms_opt(12, 0, 0).unwrap() + chrono::Duration::days(1);
        pay(
            &http,
            &base,
            &nav3,
            10_000,
            &receipt("rt-003", &nav3, 10_000, paid_at),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(2_200)).await;
    });
    let later = format!("{header}TARI-002;{nav3};{iuv3};100,00;04/10/2026;rt-003;Poste Italiane\n");
    assert_eq!(
        export("ragioneria"),
        ("1".to_string(), later.clone()),
        "{backend:?}"
    );
    // An export that cannot be written (a folder that does not exist)
    // fails, and gives its payments again next time: they are not lost.
    let out = Command::new(env!("CARGO_BIN_EXE_incasso"))
        .args(["export", "--database-url", &url, "--ente", A])
        .args(["--layout", "incasso-csv", "--consumer", "tributi"])
        .arg("--data-dir")
        .arg(&dir)
        .arg("--output")
        .arg(dir.join("manca").join("pagamenti.csv"))
        .env_remove("INCASSO_DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success(), "{backend:?}");
    let stderr = incasso_export(&url, &dir, "tributi", &file);
    assert!(
        stderr.contains("1 pagamenti esportati"),
        "{backend:?}: {stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        later,
        "{backend:?}"
    );

    // The outbox folder, the third door: a file it cannot put in place
    // (its folder is taken by a file) moves no cursor, and the next round
    // writes every payment.
    let data = dir.join("data");
    std::fs::create_dir_all(data.join("inbox").join(A).join("incasso-csv")).unwrap();
    let outbox = data.join("outbox").join(A);
    std::fs::create_dir_all(&outbox).unwrap();
    std::fs::write(outbox.join("incasso-csv"), "in the way").unwrap();
    let written = rt.block_on(incasso_app::inbox::export_once(&store, &data));
    assert!(written.is_empty(), "{backend:?}: {written:?}");
    std::fs::remove_file(outbox.join("incasso-csv")).unwrap();
    let written = rt.block_on(incasso_app::inbox::export_once(&store, &data));
    assert_eq!(written.len(), 1, "{backend:?}");
    let all = format!("{}{}", http_doc, later.strip_prefix(header).unwrap());
    assert_eq!(
        std::fs::read_to_string(&written[0]).unwrap(),
        all,
        "{backend:?}: nothing lost to the failed round"
    );
    rt.block_on(store.close());
    let _ = std::fs::remove_dir_all(&dir);
}

fn scratch_dir(backend: Backend) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "incasso-export-{backend:?}-{}-{}",
        std::process::id(),
        Utc::now().timestamp_micros()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
