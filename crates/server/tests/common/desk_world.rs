//! The Sportello Digitale's tests' world (issue 18): Enti A and B served
//! (`app.rs`), each with offices ANAG and TRIB, accertamento 2026/ACC-ANAG
//! and the service DIRITTI of office ANAG with a form defined as data (a
//! practice number, an amount from a table); desk SPORTELLO_01 at Ente A.
//! Include after `common/app.rs` (as `app`) and `common/backoffice.rs`
//! (as `backoffice`).

use super::app::TestApp;
use super::app::gpd::{ENTE, OTHER_ENTE};
use chrono::Utc;
use incasso_core::Cents;
use incasso_core::accertamento::{Accertamento, AccertamentoRef};
use incasso_core::catalogue::Service;
use incasso_core::ente::Office;
use incasso_core::form::{Amount, AmountChoice, Field, FieldKind, FormDef};
use incasso_store::Store;
use incasso_store::desks::DeskRecord;

pub const DESK: &str = "SPORTELLO_01";
pub const SERVICE: &str = "DIRITTI";
pub const DEBTOR: &str = "RSSMRA85T10A562S";

/// The catalogue of one Ente.
pub async fn catalogue(store: &Store, fc: &str) {
    let now = Utc::now();
    for (code, name) in [("ANAG", "Servizi demografici"), ("TRIB", "Tributi")] {
        store
            .put_office(
                fc,
                &Office {
                    code: code.into(),
                    name: name.into(),
                    email: None,
                },
            )
            .await
            .unwrap();
    }
    store
        .put_accertamento(
            fc,
            &Accertamento {
                year: 2026,
                code: "ACC-ANAG".into(),
                description: "Diritti di segreteria 2026".into(),
                chapter: "3010".into(),
                article: None,
                siope_code: None,
                active: true,
            },
        )
        .await
        .unwrap();
    store
        .put_service(
            fc,
            &Service {
                code: SERVICE.into(),
                name: "Diritti di segreteria".into(),
                office_code: Some("ANAG".into()),
                taxonomy_code: "9/0104103SP/".into(),
                default_accertamento: Some(AccertamentoRef {
                    year: 2026,
                    code: "ACC-ANAG".into(),
                }),
                iban: None,
                fixed_amount: None,
                spontaneous: true,
                pagopa_service_id: None,
                active: true,
            },
        )
        .await
        .unwrap();
    let def = FormDef {
        fields: vec![Field {
            name: "pratica".into(),
            kind: FieldKind::Text,
            label: "Numero della pratica".into(),
            help: "Due lettere e quattro cifre (esempio AB1234)".into(),
            required: true,
            pattern: Some("[A-Z]{2}[0-9]{4}".into()),
            choices: Vec::new(),
            min_length: None,
            max_length: None,
        }],
        amount: Amount::Table(vec![
            AmountChoice {
                label: "Rilascio ordinario".into(),
                cents: Cents(1600),
            },
            AmountChoice {
                label: "Rilascio urgente".into(),
                cents: Cents(3200),
            },
        ]),
        causale: "Diritti di segreteria - pratica {pratica}".into(),
    };
    store
        .put_service_form(
            fc,
            SERVICE,
            &serde_json::to_string(&def).unwrap(),
            None,
            "test",
            now,
        )
        .await
        .unwrap();
}

/// Both Enti's catalogues and Ente A's desk.
pub async fn desk_world(app: &TestApp) {
    catalogue(&app.store, ENTE).await;
    catalogue(&app.store, OTHER_ENTE).await;
    app.store
        .create_desk(&DeskRecord {
            ente: ENTE.into(),
            code: DESK.into(),
            name: "Sportello polifunzionale".into(),
            office: None,
            created_at: Utc::now(),
        })
        .await
        .unwrap();
}

/// The value of the input named `name` in `html`.
pub fn input_value(html: &str, name: &str) -> String {
    let key = format!("name=\"{name}\" value=\"");
    let at = html
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + key.len();
    html[at..at + html[at..].find('"').unwrap()].to_string()
}
