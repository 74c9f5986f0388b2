//! What the GPD tests (`gpd_conformance`, `gpd_v2`) share: Enti with a
//! station each on a fresh database, a key of each, and debt positions as
//! a GPD client sends them. Serve the store with `schemathesis.rs`'s
//! `serve`.

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
pub const IBAN: &str = "IT65B0200805364000104567891";
pub const OTHER_IBAN: &str = "IT61X0306909606100000012345";
pub const DEBTOR: &str = "RSSMRA85T10A562S";
pub const CATEGORY: &str = "9/0101101IM/";

/// A fresh database on `backend` with each of `enti` (the i-th with a
/// station of segregation code i + 1), and an Ente key of each, in order.
pub async fn enti(backend: Backend, enti: &[&str]) -> (Store, Vec<String>) {
    let store = Store::connect(&fresh_database_url(backend).await)
        .await
        .unwrap();
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
                    broker_id: "15376371009".into(),
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
