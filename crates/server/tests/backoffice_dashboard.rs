//! The back office's dashboard (issue 16), over HTTP on both databases:
//! its figures are those of positions made through the application layer
//! (collected, due and overdue, to the cent, by month, service, office and
//! accertamento), drawn as named SVG images with the same figures in
//! tables; an office operator counts their offices only, an operator who
//! may not read positions sees no amounts, another Ente's operator sees
//! none of them; the anomalies that wait link to their pages.

use crate::common::app;
use crate::common::backoffice;
use crate::common::catalogue;

use app::gpd::{ENTE, IBAN, OTHER_ENTE};
use app::spawn_app;
use backoffice::{Clerk, clerk, rights};
use catalogue::{MENSA_TAXONOMY, TARI_TAXONOMY, catalogue};
use chrono::{DateTime, NaiveDate, Utc};
use incasso_app::{App, Caller, Clock, Settings};
use incasso_core::Cents;
use incasso_core::accertamento::AccertamentoRef;
use incasso_core::access::{Access, Area, Role};
use incasso_core::sample::{self, PositionSpec};
use incasso_store::{AnomalyRecord, Store};
use incasso_testkit::backends;
use reqwest::StatusCode;

/// 23:59:59 in Rome of a day of 2026 or 2027: a due date as incasso keeps it.
fn due(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    incasso_core::time::from_rome(
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(23, 59, 59)
            .unwrap(),
    )
}

/// A position of service `taxonomy` booked wholly on `acc`.
fn position(
    iupd: &str,
    taxonomy: &str,
    acc: &str,
    amount: i64,
    due_date: DateTime<Utc>,
    installments: u32,
) -> incasso_core::position::DebtPosition {
    sample::position(&PositionSpec {
        ente: ENTE,
        company_name: "Comune di prova 1",
        iupd: iupd.into(),
        debtor_index: 7,
        amount: Cents(amount),
        description: format!("Avviso {iupd}"),
        category: taxonomy,
        iban: IBAN,
        due_date,
        installments,
        second_beneficiary: None,
        quotas: vec![(
            AccertamentoRef {
                year: 2026,
                code: acc.into(),
            },
            100,
        )],
    })
}

/// The positions of the test, made through the application layer on 10
/// January 2026 (so that due dates now past could be given), some paid.
///
/// | iupd | service | amount | due | state | counts as |
/// | --- | --- | --- | --- | --- | --- |
/// | T1 | TARI | 100,00 | 31/03/2026 | unpaid | overdue |
/// | T2 | TARI | 250,50 | 28/02/2026 | paid | collected |
/// | T3 | TARI | 90,00 or 3 × 30,00 | 30/04, 30/05, 29/06 | 1st installment paid | 30,00 collected, 60,00 overdue |
/// | M1 | MENSA | 45,67 | 30/12/2026 | unpaid | due |
/// | M2 | MENSA | 12,34 | 31/01/2026 | unpaid | overdue |
/// | D1 | TARI | 1.000,00 | 30/12/2026 | draft | nothing |
/// | C1 | TARI | 500,00 | 30/12/2026 | cancelled | nothing |
/// | X1 | TARI | 77,00 | 31/03/2027 | unpaid | 2027's due |
async fn positions(store: &Store) {
    let mut app = App::new(store.clone(), Settings::new("http://127.0.0.1"));
    app.clock = Clock::Fixed(due(2026, 1, 10));
    let ctx = app.ctx(Caller::System("test"));
    let create = |p, publish| incasso_app::positions::create(&ctx, ENTE, p, publish);
    for (iupd, taxonomy, acc, amount, due_date, installments) in [
        ("T1", TARI_TAXONOMY, "ACC-TARI", 10_000, due(2026, 3, 31), 0),
        ("T2", TARI_TAXONOMY, "ACC-TARI", 25_050, due(2026, 2, 28), 0),
        ("T3", TARI_TAXONOMY, "ACC-TARI", 9_000, due(2026, 4, 30), 3),
        (
            "M1",
            MENSA_TAXONOMY,
            "ACC-MENSA",
            4_567,
            due(2026, 12, 30),
            0,
        ),
        (
            "M2",
            MENSA_TAXONOMY,
            "ACC-MENSA",
            1_234,
            due(2026, 1, 31),
            0,
        ),
        (
            "C1",
            TARI_TAXONOMY,
            "ACC-TARI",
            50_000,
            due(2026, 12, 30),
            0,
        ),
        ("X1", TARI_TAXONOMY, "ACC-TARI", 7_700, due(2027, 3, 31), 0),
    ] {
        create(
            position(iupd, taxonomy, acc, amount, due_date, installments),
            true,
        )
        .await
        .unwrap();
    }
    create(
        position(
            "D1",
            TARI_TAXONOMY,
            "ACC-TARI",
            100_000,
            due(2026, 12, 30),
            0,
        ),
        false,
    )
    .await
    .unwrap();
    incasso_app::positions::invalidate(&ctx, ENTE, "C1")
        .await
        .unwrap();
    let nav = |iupd: &'static str, option: usize| async move {
        store
            .get_position(ENTE, iupd)
            .await
            .unwrap()
            .position
            .options[option]
            .notice_number
            .clone()
            .unwrap()
            .as_str()
            .to_string()
    };
    incasso_app::positions::mark_paid(&ctx, ENTE, &nav("T2", 0).await, None)
        .await
        .unwrap();
    // T3's first installment (option 0 is the single solution).
    incasso_app::positions::mark_paid(&ctx, ENTE, &nav("T3", 1).await, None)
        .await
        .unwrap();
}

/// The figures of a table row: its three amounts after its label.
fn row_of(html: &str, label: &str) -> Vec<String> {
    let at = html
        .find(&format!(">{label}</th>"))
        .or_else(|| html.find(&format!(">{label}</a></th>")))
        .unwrap_or_else(|| panic!("no row {label} in {html}"));
    let rest = &html[at..html[at..].find("</tr>").unwrap() + at];
    rest.split("<td class=\"text-end text-nowrap\">")
        .skip(1)
        .map(|c| c[..c.find("</td>").unwrap()].to_string())
        .collect()
}

async fn dashboard(c: &Clerk, query: &str) -> String {
    let page = c.get(&format!("/backoffice/{query}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    page.text()
}

#[tokio::test]
async fn dashboard_figures_charts_scope_and_anomalies() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let store = app.store.clone();
        let base = app.server.base.clone();
        catalogue(&store).await;
        positions(&store).await;
        let admin = clerk(
            &store,
            &base,
            "admin.a",
            rights(Role::EnteAdmin, Some(ENTE), &[], &[]),
        )
        .await;

        let html = dashboard(&admin, "?anno=2026").await;
        // The year's totals, to the cent.
        for (label, amount) in [
            ("Riscosso", "280,50 €"),
            ("Da riscuotere", "45,67 €"),
            ("Scaduto", "172,34 €"),
        ] {
            let card = html.find(&format!(">{label}</p>")).unwrap();
            assert!(
                html[card..card + 200].contains(amount),
                "{backend:?} {label}: {}",
                &html[card..card + 200]
            );
        }
        // By month of due date.
        assert_eq!(row_of(&html, "Gennaio"), ["0,00 €", "0,00 €", "12,34 €"]);
        assert_eq!(row_of(&html, "Febbraio"), ["250,50 €", "0,00 €", "0,00 €"]);
        assert_eq!(row_of(&html, "Marzo"), ["0,00 €", "0,00 €", "100,00 €"]);
        assert_eq!(row_of(&html, "Aprile"), ["30,00 €", "0,00 €", "0,00 €"]);
        assert_eq!(row_of(&html, "Maggio"), ["0,00 €", "0,00 €", "30,00 €"]);
        assert_eq!(row_of(&html, "Giugno"), ["0,00 €", "0,00 €", "30,00 €"]);
        assert_eq!(row_of(&html, "Dicembre"), ["0,00 €", "45,67 €", "0,00 €"]);
        // By service, office and accertamento.
        assert_eq!(
            row_of(&html, "Tassa rifiuti (TARI)"),
            ["280,50 €", "0,00 €", "160,00 €"]
        );
        assert_eq!(
            row_of(&html, "Mensa scolastica (MENSA)"),
            ["0,00 €", "45,67 €", "12,34 €"]
        );
        assert_eq!(
            row_of(&html, "Ufficio tributi (UT)"),
            ["280,50 €", "0,00 €", "160,00 €"]
        );
        assert_eq!(
            row_of(&html, "Ufficio refezione (UR)"),
            ["0,00 €", "45,67 €", "12,34 €"]
        );
        assert_eq!(
            row_of(&html, "Tassa rifiuti (2026/ACC-TARI)"),
            ["280,50 €", "0,00 €", "160,00 €"]
        );
        assert_eq!(
            row_of(&html, "Refezione (2026/ACC-MENSA)"),
            ["0,00 €", "45,67 €", "12,34 €"]
        );
        assert!(!html.contains("Senza accertamento"), "every cent is booked");
        // Each year, linked to its own dashboard.
        assert_eq!(row_of(&html, "2027"), ["0,00 €", "77,00 €", "0,00 €"]);
        assert!(html.contains(r#"<option value="2027""#));
        // Charts: SVG images named and described, no inline style.
        assert_eq!(html.matches("<svg class=\"bo-chart\"").count(), 5);
        assert!(
            html.contains(r#"role="img" aria-labelledby="grafico-mesi-titolo grafico-mesi-desc""#)
        );
        assert!(html.contains("Riscosso 280,50 €, da riscuotere 45,67 €, scaduto 172,34 €"));
        assert!(html.contains("<rect class=\"bo-bar-overdue\""));
        assert!(!html.contains("style="));
        // 2027 on request; a year that is no year is refused, said why.
        let next = dashboard(&admin, "?anno=2027").await;
        assert_eq!(row_of(&next, "Marzo"), ["0,00 €", "77,00 €", "0,00 €"]);
        let bad = admin.get("/backoffice/?anno=duemila").await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert!(bad.text().contains("Anno: «duemila»"));

        // A change is seen at once (the snapshot is taken again).
        let mut later = App::new(store.clone(), Settings::new("http://127.0.0.1"));
        later.clock = Clock::Fixed(due(2026, 1, 11));
        let ctx = later.ctx(Caller::System("test"));
        let m1 = store
            .get_position(ENTE, "M1")
            .await
            .unwrap()
            .position
            .options[0]
            .notice_number
            .clone()
            .unwrap();
        incasso_app::positions::mark_paid(&ctx, ENTE, m1.as_str(), None)
            .await
            .unwrap();
        let html = dashboard(&admin, "?anno=2026").await;
        assert_eq!(row_of(&html, "Dicembre"), ["45,67 €", "0,00 €", "0,00 €"]);
        assert_eq!(
            row_of(&html, "Ufficio refezione (UR)"),
            ["45,67 €", "0,00 €", "12,34 €"]
        );

        // Anomalies that wait: a refused supply, a reconciliation anomaly.
        let refused = admin
            .post_file(
                "/backoffice/forniture/carica",
                &[("tracciato", "incasso-csv")],
                "file",
                "errata.csv",
                "codice;servizio;codice_fiscale;nominativo;rata;importo;causale;scadenza\nE-1;TARI;RSSMRA85T10A562X;Mario Rossi;0;10,00;x;31/12/2027\n"
                    .as_bytes()
                    .to_vec(),
            )
            .await;
        assert_eq!(refused.status, StatusCode::SEE_OTHER, "{}", refused.text());
        let supply_path = refused.location.unwrap();
        for _ in 0..200 {
            if !admin
                .get(&supply_path)
                .await
                .text()
                .contains("In caricamento")
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        store
            .save_matching(
                ENTE,
                &[],
                &[AnomalyRecord {
                    code: "PAYMENT_WITHOUT_RECEIPT".into(),
                    subject: "2026-12-01PSP-FLOW-1".into(),
                    detail: "1 pagamenti senza ricevuta".into(),
                    amount: Some(Cents(1_500)),
                }],
                Utc::now(),
            )
            .await
            .unwrap();
        let html = dashboard(&admin, "").await;
        assert!(
            html.contains(&format!(r#"<a href="{supply_path}">Fornitura"#)),
            "{html}"
        );
        assert!(
            html.contains(
                r#"<a href="/backoffice/tesoreria">Pagamenti senza ricevuta</a>: 1, per 15,00 €"#
            ),
            "{html}"
        );

        // An office operator of UT counts UT's only, and is not shown the
        // Ente's reconciliation.
        let office = clerk(
            &store,
            &base,
            "tributi.a",
            rights(
                Role::OfficeOperator,
                Some(ENTE),
                &[
                    (Area::Positions, Access::Read),
                    (Area::Reporting, Access::Read),
                ],
                &["UT"],
            ),
        )
        .await;
        let html = dashboard(&office, "?anno=2026").await;
        let card = html.find(">Riscosso</p>").unwrap();
        assert!(html[card..card + 200].contains("280,50 €"));
        let card = html.find(">Da riscuotere</p>").unwrap();
        assert!(html[card..card + 200].contains("0,00 €"));
        let card = html.find(">Scaduto</p>").unwrap();
        assert!(html[card..card + 200].contains("160,00 €"));
        for theirs in [
            "45,67",
            "12,34",
            "Mensa scolastica",
            "Ufficio refezione",
            "Refezione",
            "Pagamenti senza ricevuta",
        ] {
            assert!(!html.contains(theirs), "{theirs} shown to UT: {html}");
        }
        assert!(html.contains("Sono compresi solo gli uffici: UT."));

        // The accountant reads every figure; an operator who may not read
        // positions sees none.
        let accountant = clerk(
            &store,
            &base,
            "ragioneria.a",
            rights(Role::Accountant, Some(ENTE), &[], &[]),
        )
        .await;
        let html = dashboard(&accountant, "?anno=2026").await;
        assert_eq!(
            row_of(&html, "Ufficio refezione (UR)"),
            ["45,67 €", "0,00 €", "12,34 €"]
        );
        let supplies_only = clerk(
            &store,
            &base,
            "forniture.a",
            rights(
                Role::OfficeOperator,
                Some(ENTE),
                &[(Area::Supplies, Access::Read)],
                &["UT"],
            ),
        )
        .await;
        let html = dashboard(&supplies_only, "?anno=2026").await;
        assert!(html.contains("gli importi non sono mostrati"));
        assert!(!html.contains("280,50") && !html.contains("<svg class=\"bo-chart\""));
        assert!(
            html.contains(&supply_path),
            "supplies to review are theirs to see"
        );

        // Another Ente's administrator: their own (empty) figures, none of A's.
        let other = clerk(
            &store,
            &base,
            "admin.b",
            rights(Role::EnteAdmin, Some(OTHER_ENTE), &[], &[]),
        )
        .await;
        let html = dashboard(&other, "?anno=2026").await;
        for theirs in [
            "280,50",
            "45,67",
            "Tassa rifiuti",
            "Ufficio tributi",
            &supply_path,
            "Pagamenti senza ricevuta",
        ] {
            assert!(!html.contains(theirs), "{theirs} shown to Ente B");
        }
        assert!(html.contains("Nessuna anomalia in attesa."));
    }
}
