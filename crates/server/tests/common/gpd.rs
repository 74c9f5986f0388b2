//! What the GPD tests (`gpd_conformance`, and through `app.rs` `gpd_v2`,
//! `gpd_v3` and `gpd_upload`) share: Enti with a station each on a fresh
//! database, a key of each, debt positions as a GPD client sends them
//! (v1's and v3's models), the receipt the Node sends for a notice, and
//! the ZIP of the massive upload. Serve the store with `schemathesis.rs`'s
//! `serve` (`app.rs` does, with Enti A and B).

// Each test that includes this module uses a part of it.
#![allow(dead_code)]

use incasso_app::keys::issue_key;
use incasso_core::codes::NoticeNumber;
use incasso_core::ente::{Ente, StationLink};
use incasso_store::{KeyScope, Store};
use incasso_testkit::{Backend, fresh_database_url};
use serde_json::{Value, json};

/// The Ente the GPD tests work for; its station has segregation code 1.
pub const ENTE: &str = "80000130585";
/// Another Ente, whose key must never reach [`ENTE`]'s positions.
pub const OTHER_ENTE: &str = "97000000022";
pub const SEGREGATION: u8 = 1;
/// The intermediary of every Ente's station (the massive upload's
/// `broker-code`, the Node's `idBrokerPA`).
pub const BROKER: &str = "15376371009";
/// The station of the first Ente [`enti`] makes: [`ENTE`]'s in every test.
pub const STATION: &str = "ST_01";
pub const IBAN: &str = "IT65B0200805364000104567891";
pub const OTHER_IBAN: &str = "IT61X0306909606100000012345";
/// Fails the IBAN check digits.
pub const BAD_IBAN: &str = "IT00B0200805364000104567891";
pub const DEBTOR: &str = "RSSMRA85T10A562S";
pub const CATEGORY: &str = "9/0101101IM/";
/// What GPD answers to a delete (v1, v2, v3), as a JSON string.
pub const DELETED: &str = "The debt position was successfully deleted";

/// A fresh database on `backend` with each of `enti` (the i-th with a
/// station of segregation code i + 1), and an Ente key of each, in order.
pub async fn enti(backend: Backend, enti: &[&str]) -> (Store, Vec<String>) {
    enti_at(&fresh_database_url(backend).await, enti).await
}

/// [`enti`] on the database at `url`.
pub async fn enti_at(url: &str, enti: &[&str]) -> (Store, Vec<String>) {
    let store = Store::connect(url).await.unwrap();
    let now = chrono::Utc::now();
    let mut keys = Vec::with_capacity(enti.len());
    for (i, fiscal_code) in enti.iter().enumerate() {
        store
            .create_ente(
                &Ente {
                    fiscal_code: fiscal_code.to_string(),
                    name: format!("Comune di prova {}", i + 1),
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
                fiscal_code,
                &StationLink {
                    broker_id: BROKER.into(),
                    station_id: format!("ST_{:02}", i + 1),
                    segregation_code: i as u8 + 1,
                },
                now,
            )
            .await
            .unwrap();
        let (_, key) = issue_key(&store, Some(fiscal_code), KeyScope::Ente, "gpd tests")
            .await
            .unwrap();
        keys.push(key);
    }
    (store, keys)
}

/// A notice number of [`ENTE`]'s station, by sequence.
pub fn nav(sequence: u64) -> String {
    NoticeNumber::generate(SEGREGATION, sequence)
        .unwrap()
        .as_str()
        .to_string()
}

/// The IUV of [`nav`]`(sequence)`: the notice number without its aux digit.
pub fn iuv(sequence: u64) -> String {
    nav(sequence)[1..].to_string()
}

/// GPD's `PaymentPositionModel` as a client sends it to [`ENTE`]: one
/// option per IUV (installments when more than one), each of 100.00 euro
/// in two transfers (the Ente's 80.00, another Ente's 20.00), due in 2099.
pub fn position(iupd: &str, iuvs: &[String]) -> Value {
    let options: Vec<Value> = iuvs
        .iter()
        .enumerate()
        .map(|(i, iuv)| {
            json!({
                "iuv": iuv,
                "amount": 10000,
                "description": format!("TARI 2026 rata {}", i + 1),
                "isPartialPayment": iuvs.len() > 1,
                "dueDate": format!("2099-0{}-28T23:59:59Z", i + 1),
                "retentionDate": "2099-12-31T23:59:59Z",
                "paymentOptionMetadata": [{"key": "anno", "value": "2026"}],
                "transfer": [{
                    "idTransfer": "1",
                    "amount": 8000,
                    "organizationFiscalCode": ENTE,
                    "remittanceInformation": "TARI 2026 quota comune",
                    "category": CATEGORY,
                    "iban": IBAN,
                    "transferMetadata": [{"key": "capitolo", "value": "1010"}]
                }, {
                    "idTransfer": "2",
                    "amount": 2000,
                    "organizationFiscalCode": OTHER_ENTE,
                    "companyName": "Altro ente",
                    "remittanceInformation": "TARI 2026 quota provincia",
                    "category": CATEGORY,
                    "iban": OTHER_IBAN,
                    "transferMetadata": []
                }]
            })
        })
        .collect();
    json!({
        "iupd": iupd,
        "type": "F",
        "payStandIn": true,
        "fiscalCode": DEBTOR,
        "fullName": "Mario Rossi",
        "streetName": "Via Roma",
        "civicNumber": "1",
        "postalCode": "00100",
        "city": "Roma",
        "province": "RM",
        "country": "IT",
        "email": "mario.rossi@example.com",
        "switchToExpired": false,
        "companyName": "Comune di prova",
        "officeName": "Ufficio Tributi",
        "paymentOption": options
    })
}

/// [`position`] as GPD v3's `PaymentPositionModelV3`: one payment option
/// of the same debtor, a single solution for one IUV, an installment plan
/// for more, with the same installments and transfers.
pub fn position_v3(iupd: &str, iuvs: &[String]) -> Value {
    let v1 = position(iupd, iuvs);
    let installments: Vec<Value> = v1["paymentOption"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            json!({
                "iuv": o["iuv"],
                "amount": o["amount"],
                "description": o["description"],
                "dueDate": o["dueDate"],
                "installmentMetadata": o["paymentOptionMetadata"],
                "transfer": o["transfer"],
            })
        })
        .collect();
    let mut debtor = json!({});
    for field in [
        "type",
        "fiscalCode",
        "fullName",
        "streetName",
        "civicNumber",
        "postalCode",
        "city",
        "province",
        "country",
        "email",
    ] {
        debtor[field] = v1[field].clone();
    }
    json!({
        "iupd": iupd,
        "payStandIn": true,
        "companyName": v1["companyName"],
        "officeName": v1["officeName"],
        "paymentOption": [{
            "description": "TARI 2026",
            "retentionDate": "2099-12-31T23:59:59Z",
            "switchToExpired": false,
            "debtor": debtor,
            "installments": installments,
        }]
    })
}

/// The receipt the Node sends (`paSendRT`, `paSendRTV2`) when notice `nav`
/// of a [`position`] is paid: its 100.00 euro, to its two transfers, now.
pub fn receipt(id: &str, nav: &str, outcome: &str) -> incasso_pagopa::wire::Receipt {
    use incasso_core::Cents;
    use incasso_pagopa::wire::{Receipt, ReceiptTransfer, Subject};
    let subject = Subject {
        kind: "F".into(),
        id: DEBTOR.into(),
        full_name: "Mario Rossi".into(),
        country: Some("IT".into()),
        email: Some("mario.rossi@example.com".into()),
        ..Default::default()
    };
    let transfer = |id: u8, fiscal_code: &str, amount: i64, iban: &str| ReceiptTransfer {
        id_transfer: id,
        amount: Cents(amount),
        fiscal_code_pa: fiscal_code.into(),
        company_name: None,
        iban: Some(iban.into()),
        remittance_information: "TARI 2026".into(),
        transfer_category: CATEGORY.into(),
        metadata: vec![],
    };
    let now = chrono::Utc::now();
    Receipt {
        receipt_id: id.into(),
        notice_number: nav.into(),
        fiscal_code: ENTE.into(),
        outcome: outcome.into(),
        creditor_reference_id: nav[1..].into(),
        payment_amount: Cents(10000),
        description: "TARI 2026".into(),
        company_name: "Comune di prova".into(),
        office_name: None,
        debtor: subject.clone(),
        transfers: vec![
            transfer(1, ENTE, 8000, IBAN),
            transfer(2, OTHER_ENTE, 2000, OTHER_IBAN),
        ],
        id_psp: "60000000001".into(),
        psp_fiscal_code: Some("60000000001".into()),
        psp_partita_iva: None,
        psp_company_name: "PSP Esempio".into(),
        id_channel: "60000000001_01".into(),
        channel_description: "app".into(),
        payer: Some(subject),
        payment_method: Some("creditCard".into()),
        payment_note: None,
        fee: Some(Cents(150)),
        primary_ci_incurred_fee: None,
        id_bundle: None,
        id_ci_bundle: None,
        payment_date_time: Some(now.naive_utc()),
        application_date: Some(now.date_naive()),
        transfer_date: None,
        metadata: vec![],
        stand_in: Some(false),
    }
}

/// The SOAP header of the Node's calls for [`ENTE`] through its station.
pub fn node_header() -> incasso_pagopa::wire::Header {
    incasso_pagopa::wire::Header {
        id_pa: ENTE.into(),
        id_broker_pa: BROKER.into(),
        id_station: STATION.into(),
    }
}

/// The massive upload's file: a ZIP holding `name` (a `.json` file) with
/// `json`, compressed as a client compresses it.
pub fn zip_of(name: &str, json: &Value) -> Vec<u8> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file(name, zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(json.to_string().as_bytes()).unwrap();
    zip.finish().unwrap().into_inner()
}

/// A ZIP as [`zip_of`]'s, but whose every byte is ASCII, so that it can go
/// as text where only text goes (an example in an OpenAPI document, which
/// is JSON) and still arrive byte for byte (ASCII is its own UTF-8): the
/// file is stored, not compressed, with a fixed time, no attributes, and
/// as many trailing spaces after the JSON (which JSON ignores) as it takes
/// for its checksum, sizes and offsets to be ASCII bytes too.
pub fn ascii_zip(name: &str, json: &Value) -> String {
    use std::io::Write;
    let text = json.to_string();
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .system(zip::System::Dos)
        .external_attributes(0)
        .last_modified_time(zip::DateTime::from_date_and_time(2026, 1, 1, 0, 0, 0).unwrap());
    for pad in 0..4096 {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        zip.start_file(name, options).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
        zip.write_all(" ".repeat(pad).as_bytes()).unwrap();
        let bytes = zip.finish().unwrap().into_inner();
        if bytes.is_ascii() {
            return String::from_utf8(bytes).unwrap();
        }
    }
    panic!("{name}: no ASCII ZIP within 4096 spaces")
}

/// A `multipart/form-data` body of one file part (the workspace's reqwest
/// has no `multipart` feature), and its content type.
pub fn multipart(field: &str, file_name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    const BOUNDARY: &str = "incasso-gpd-test-boundary";
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; \
         filename=\"{file_name}\"\r\nContent-Type: application/zip\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}
