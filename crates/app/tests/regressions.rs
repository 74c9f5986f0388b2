//! Regression tests of the application layer, named after what broke
//! (issue 14). Each runs on every backend.

use chrono::{NaiveDate, Utc};
use incasso_app::reconcile::{self, ReconError};
use incasso_app::{App, AppError, Caller, Kind, Settings};
use incasso_core::Cents;
use incasso_core::ente::Ente;
use incasso_core::treasury::{Direction, DocumentKind, Operation, TreasuryMovement};
use incasso_store::{KeyScope, Store};
use incasso_testkit::{backends, fresh_database_url};

const ENTE: &str = "80000130585";
const OTHER: &str = "00514490010";

async fn store(url: &str) -> Store {
    let store = Store::connect(url).await.unwrap();
    for (fc, name) in [
        (ENTE, "Comune di Borgo Esempio"),
        (OTHER, "Comune di Altrove"),
    ] {
        store
            .create_ente(
                &Ente {
                    fiscal_code: fc.into(),
                    name: name.into(),
                    ipa_code: None,
                    iban: Some("IT65B0200805364000104567891".into()),
                    postal_iban: None,
                    cbill_code: None,
                    email: None,
                },
                Utc::now(),
            )
            .await
            .unwrap();
    }
    store
}

fn sospeso(id: &str, account: &str) -> TreasuryMovement {
    TreasuryMovement {
        movement_id: id.into(),
        ente: ENTE.into(),
        account: account.into(),
        year: 2026,
        direction: Direction::Income,
        document: DocumentKind::ProvisionalIncome,
        operation: Operation::Executed,
        document_number: id.into(),
        amount: Cents(15_000),
        booking_date: NaiveDate::from_ymd_opt(2026, 10, 3).unwrap(),
        value_date: None,
        payer: Some("PSP".into()),
        causale: "/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPA-1".into(),
        trn: None,
        end_to_end_id: None,
    }
}

/// An account of 15 bytes or more of non-ASCII text (a bank's free text in
/// OPI's `conto_evidenza`, camt's `Acct/Id` or a CSV column) made matching
/// slice a string inside a character and panic, in a request or in the
/// hourly fetch of every Ente.
#[tokio::test]
async fn a_non_ascii_account_never_panics_the_reconciliation() {
    for backend in backends() {
        let url = fresh_database_url(backend).await;
        let store = store(&url).await;
        let now = Utc::now();
        let movements = [
            sospeso("1", "ÀÈÌÒÙàèìòù"),
            sospeso("2", "conto è tesoreria unica"),
            sospeso("3", "€€€€€€"),
        ];
        store.store_movements(ENTE, &movements, now).await.unwrap();
        let summary = reconcile::reconcile(&store, ENTE, now)
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        assert_eq!(summary.open_sospesi, 3, "{backend:?}");
        store.close().await;
    }
}

/// A treasury layout whose amounts are cents let `-9223372036854775808`
/// through, and `abs()` overflowed on it. Every amount from outside is now
/// bounded, and an amount beyond the bound is an error naming its row and
/// field; nothing of the file is stored.
#[tokio::test]
async fn an_amount_beyond_range_is_refused_with_its_row_and_field() {
    let layout = incasso_bus::Layout::from_toml(
        r#"
name = "tesoreria-centesimi"
version = 1
kind = "treasury"
encoding = "utf-8"
key = ["numero"]
format = { kind = "delimited", separator = ";", header = true }

[fields]
"movement.number" = { column = "numero" }
"movement.date" = { column = "data", date = "dd/mm/yyyy" }
"movement.amount" = { column = "importo", amount = "cents" }
"movement.causale" = { column = "causale" }
"#,
    )
    .unwrap();
    for backend in backends() {
        let url = fresh_database_url(backend).await;
        let store = store(&url).await;
        for amount in [
            "-9223372036854775808",
            "9223372036854775807",
            "100000000000",
        ] {
            let csv = format!(
                "numero;data;importo;causale\n1;03/10/2026;15000;ACCREDITO\n2;03/10/2026;{amount};ACCREDITO\n"
            );
            let refused = reconcile::take_treasury_with_layout(
                &store,
                ENTE,
                &layout,
                csv.into_bytes(),
                Utc::now(),
            )
            .await;
            match refused {
                Err(ReconError::Treasury(e)) => {
                    let text = e.to_string();
                    assert!(text.contains("riga 3"), "{backend:?} {amount}: {text}");
                    assert!(text.contains("campo importo"), "{backend:?}: {text}");
                }
                other => panic!("{backend:?} {amount}: {other:?}"),
            }
        }
        let summary = reconcile::reconcile(&store, ENTE, Utc::now())
            .await
            .unwrap();
        assert_eq!(summary.open_sospesi, 0, "{backend:?}: nothing was stored");
        store.close().await;
    }
}

/// One Ente's share of a background job that panics is reported and the
/// job goes on: the next share, and the next round, run as usual.
#[tokio::test]
async fn a_job_share_that_panics_is_reported_and_the_job_goes_on() {
    let failed: Option<u32> = incasso_app::jobs::isolated(ENTE, "test", async {
        let account = String::from("ÀÈÌÒÙàèìòù");
        // The very slice that once panicked in the flow fetch.
        let _ = &account[..3];
        1
    })
    .await;
    assert_eq!(failed, None);
    let next = incasso_app::jobs::isolated(OTHER, "test", async { 2 }).await;
    assert_eq!(next, Some(2));
}

fn ctx(store: &Store, caller: Caller) -> incasso_app::Ctx {
    App::new(store.clone(), Settings::new("http://127.0.0.1:1")).ctx(caller)
}

/// An application's key could revoke every key of its Ente. Now managing
/// keys needs the Ente's administrator key (or the intermediary's), and
/// no Ente key can issue keys.
#[tokio::test]
async fn only_an_administrator_manages_an_entes_keys() {
    for backend in backends() {
        let url = fresh_database_url(backend).await;
        let store = store(&url).await;
        let issue = |scope| incasso_app::keys::issue_key(&store, Some(ENTE), scope, "t");
        let (app_id, app_key) = issue(KeyScope::Ente).await.unwrap();
        let (other_app_id, _) = issue(KeyScope::Ente).await.unwrap();
        let (_, admin_key) = issue(KeyScope::EnteAdmin).await.unwrap();
        let (_, foreign_admin) =
            incasso_app::keys::issue_key(&store, Some(OTHER), KeyScope::EnteAdmin, "t")
                .await
                .unwrap();
        let caller = |key: &str| {
            let store = store.clone();
            let key = key.to_string();
            async move { incasso_app::keys::authenticate(&store, &key).await.unwrap() }
        };
        let application = ctx(&store, caller(&app_key).await);
        let refused: AppError = incasso_app::keys::revoke(&application, ENTE, &other_app_id)
            .await
            .unwrap_err();
        assert_eq!(refused.kind, Kind::Forbidden, "{backend:?}");
        assert_eq!(refused.code, "FORBIDDEN_SCOPE");
        assert!(
            incasso_app::keys::list(&application, Some(ENTE), None, None)
                .await
                .is_err()
        );
        let issued = incasso_app::keys::issue(&application, Some(ENTE), KeyScope::Ente, "x").await;
        assert_eq!(issued.unwrap_err().kind, Kind::Forbidden);
        // Another Ente's administrator is nobody here.
        let foreign = ctx(&store, caller(&foreign_admin).await);
        let refused = incasso_app::keys::revoke(&foreign, ENTE, &app_id)
            .await
            .unwrap_err();
        assert_eq!(refused.kind, Kind::Forbidden, "{backend:?}");
        // The Ente's administrator may.
        let admin = ctx(&store, caller(&admin_key).await);
        assert_eq!(
            incasso_app::keys::list(&admin, Some(ENTE), None, None)
                .await
                .unwrap()
                .items
                .len(),
            3
        );
        incasso_app::keys::revoke(&admin, ENTE, &other_app_id)
            .await
            .unwrap();
        // The application's own key still works; the revoked one no longer.
        assert!(
            incasso_app::keys::authenticate(&store, &app_key)
                .await
                .is_ok()
        );
        assert_eq!(
            incasso_app::keys::list(&admin, Some(ENTE), None, None)
                .await
                .unwrap()
                .items
                .len(),
            2,
            "{backend:?}"
        );
        store.close().await;
    }
}
