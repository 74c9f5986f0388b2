//! The back office's archive of positions (issue 16), over HTTP on both
//! databases: the search by each filter, its order, pages and exports; a
//! position's page and its notice; the single entry with a bad field and a
//! good one, its update, publication, cancellation and deletion; and the
//! rights: another Ente's administrator sees none of it, an office
//! operator only their office's positions, an accountant reads and may
//! change nothing.

use crate::common::app;
use crate::common::backoffice;
use crate::common::catalogue;

use app::gpd::{ENTE, IBAN, OTHER_ENTE, OTHER_IBAN};
use app::spawn_app;
use backoffice::{Answer, Clerk, clerk, rights};
use catalogue::{MENSA_TAXONOMY, TARI_TAXONOMY, catalogue};
use chrono::{Duration, Utc};
use incasso_app::{App, Caller, Settings};
use incasso_core::Cents;
use incasso_core::accertamento::AccertamentoRef;
use incasso_core::access::{Access, Area, Role};
use incasso_core::position::{DebtPosition, PositionStatus};
use incasso_core::sample::{self, PositionSpec, personal_fiscal_code};
use incasso_store::{PositionSearch, ReceiptRecord, Store};
use incasso_testkit::backends;
use reqwest::StatusCode;

const LIST: &str = "/backoffice/posizioni";

/// A position of Ente `ente` for debtor `n` (named `name`), of taxonomy
/// `taxonomy`, due in `days`.
#[allow(clippy::too_many_arguments)]
fn position(
    ente: &str,
    iupd: &str,
    n: u64,
    name: &str,
    taxonomy: &str,
    cents: i64,
    days: i64,
    installments: u32,
) -> DebtPosition {
    let acc = if taxonomy == TARI_TAXONOMY {
        "ACC-TARI"
    } else {
        "ACC-MENSA"
    };
    let mut p = sample::position(&PositionSpec {
        ente,
        company_name: "Comune di prova",
        iupd: iupd.into(),
        debtor_index: n,
        amount: Cents(cents),
        description: format!("Avviso {iupd}"),
        category: taxonomy,
        iban: if ente == ENTE { IBAN } else { OTHER_IBAN },
        due_date: Utc::now() + Duration::days(days),
        installments,
        second_beneficiary: None,
        quotas: if ente == ENTE {
            vec![(
                AccertamentoRef {
                    year: 2026,
                    code: acc.into(),
                },
                100,
            )]
        } else {
            vec![]
        },
    });
    p.debtor.full_name = name.into();
    p
}

/// The positions of the tests, made through the application layer as a
/// management application would (their service and office derived from
/// their taxonomy).
///
/// | iupd | service (office) | debtor | due in | state |
/// | --- | --- | --- | --- | --- |
/// | TARI-ROSSI | TARI (UT) | Rossi Mario (1) | 30 days | valid |
/// | TARI-ROSSA | TARI (UT) | Rossa Carla (2) | 200 days | valid |
/// | MENSA-BIANCHI | MENSA (UR) | Bianchi Anna (3) | 60 days | valid |
/// | TARI-VERDI | TARI (UT) | Verdi Luca (4) | 90 days | draft |
/// | MENSA-NERI | MENSA (UR) | Neri Paolo (5) | 45 days | cancelled |
/// | TARI-RATE | TARI (UT) | Gialli Sara (6) | 120 days, 3 installments | valid, paid |
///
/// and Ente B's B-ROSSI, of the same debtor as TARI-ROSSI.
async fn seed(store: &Store) {
    catalogue(store).await;
    let app = App::new(store.clone(), Settings::new("http://127.0.0.1"));
    let ctx = app.ctx(Caller::System("test"));
    for (iupd, n, name, taxonomy, cents, days, installments, publish) in [
        (
            "TARI-ROSSI",
            1,
            "Rossi Mario",
            TARI_TAXONOMY,
            10_000,
            30,
            0,
            true,
        ),
        (
            "TARI-ROSSA",
            2,
            "Rossa Carla",
            TARI_TAXONOMY,
            8_000,
            200,
            0,
            true,
        ),
        (
            "MENSA-BIANCHI",
            3,
            "Bianchi Anna",
            MENSA_TAXONOMY,
            4_567,
            60,
            0,
            true,
        ),
        (
            "TARI-VERDI",
            4,
            "Verdi Luca",
            TARI_TAXONOMY,
            25_000,
            90,
            0,
            false,
        ),
        (
            "MENSA-NERI",
            5,
            "Neri Paolo",
            MENSA_TAXONOMY,
            1_234,
            45,
            0,
            true,
        ),
        (
            "TARI-RATE",
            6,
            "Gialli Sara",
            TARI_TAXONOMY,
            9_000,
            120,
            3,
            true,
        ),
    ] {
        incasso_app::positions::create(
            &ctx,
            ENTE,
            position(ENTE, iupd, n, name, taxonomy, cents, days, installments),
            publish,
        )
        .await
        .unwrap();
    }
    incasso_app::positions::invalidate(&ctx, ENTE, "MENSA-NERI")
        .await
        .unwrap();
    incasso_app::positions::create(
        &ctx,
        OTHER_ENTE,
        position(
            OTHER_ENTE,
            "B-ROSSI",
            1,
            "Rossi Mario",
            TARI_TAXONOMY,
            5_000,
            30,
            0,
        ),
        true,
    )
    .await
    .unwrap();
    // TARI-RATE's first installment paid through pagoPA.
    let rate = store.get_position(ENTE, "TARI-RATE").await.unwrap();
    let option = &rate.position.options[1];
    let (iuv, nav) = (
        option.iuv.clone().unwrap(),
        option.notice_number.as_ref().unwrap().as_str().to_string(),
    );
    store
        .record_receipt(
            &ReceiptRecord {
                ente: ENTE.into(),
                receipt_id: format!("R-{iuv}"),
                notice_number: nav,
                iuv,
                owner_ente: ENTE.into(),
                outcome: "OK".into(),
                amount: option.amount.0,
                fee: Some(100),
                psp_id: "PSPEITMMXXX".into(),
                psp_name: "PSP Esempio".into(),
                channel_id: "PSPEITMMXXX_01".into(),
                payment_method: Some("creditCard".into()),
                payment_date_time: Some(Utc::now()),
                application_date: None,
                transfer_date: None,
                station_id: "ST_01".into(),
                primitive: "paSendRTV2".into(),
                stand_in: false,
                transfers_json: "[]".into(),
                raw_xml: "<paSendRTV2Req/>".into(),
                debtor: Some(personal_fiscal_code(6)),
            },
            Utc::now(),
        )
        .await
        .unwrap();
}

/// The positions a list page links to, in its order.
fn listed(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in html.split("href=\"/backoffice/posizioni/").skip(1) {
        let key = &part[..part.find('"').unwrap()];
        if key != "nuova" && !key.contains('?') && !key.contains('/') {
            out.push(key.to_string());
        }
    }
    out
}

async fn search(c: &Clerk, query: &str) -> Vec<String> {
    let page = c.get(&format!("{LIST}?{query}")).await;
    assert_eq!(page.status, StatusCode::OK, "{query}: {}", page.text());
    listed(&page.text())
}

fn set(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn status_of(a: &Answer, status: StatusCode, what: &str) {
    assert_eq!(a.status, status, "{what}: {}", a.text());
}

async fn nav_of(store: &Store, ente: &str, iupd: &str, option: usize) -> (String, String) {
    let p = store.get_position(ente, iupd).await.unwrap();
    let o = &p.position.options[option];
    (
        o.notice_number.as_ref().unwrap().as_str().to_string(),
        o.iuv.clone().unwrap(),
    )
}

/// The day `days` from now, as a date field sends it.
fn day(days: i64) -> String {
    incasso_core::time::to_rome(Utc::now() + Duration::days(days))
        .format("%Y-%m-%d")
        .to_string()
}

#[tokio::test]
async fn search_by_each_filter_sort_pages_and_exports() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let store = app.store.clone();
        let base = app.server.base.clone();
        seed(&store).await;
        let admin = clerk(
            &store,
            &base,
            "admin.a",
            rights(Role::EnteAdmin, Some(ENTE), &[], &[]),
        )
        .await;
        let all_a = set(&[
            "TARI-ROSSI",
            "TARI-ROSSA",
            "MENSA-BIANCHI",
            "TARI-VERDI",
            "MENSA-NERI",
            "TARI-RATE",
        ]);

        // Everything, newest first; never another Ente's.
        let page = admin.get(LIST).await;
        status_of(&page, StatusCode::OK, "list");
        let html = page.text();
        assert!(html.contains("6 risultati"), "{backend:?}");
        let rows = listed(&html);
        assert_eq!(rows.first().map(String::as_str), Some("TARI-RATE"));
        assert_eq!(sorted(rows), all_a);
        assert!(!html.contains("B-ROSSI"));
        assert!(html.contains("Mensa scolastica"), "service names shown");
        assert!(html.contains("Ufficio tributi"), "office names shown");

        // Each filter.
        let cf = personal_fiscal_code(1);
        assert_eq!(
            search(&admin, &format!("debitore={cf}")).await,
            ["TARI-ROSSI"]
        );
        assert_eq!(
            search(&admin, &format!("debitore={}", cf.to_lowercase())).await,
            ["TARI-ROSSI"]
        );
        assert_eq!(
            sorted(search(&admin, "debitore=ross").await),
            set(&["TARI-ROSSA", "TARI-ROSSI"])
        );
        assert_eq!(search(&admin, "debitore=Rossi%20m").await, ["TARI-ROSSI"]);
        assert_eq!(search(&admin, "debitore=BIANCHI").await, ["MENSA-BIANCHI"]);
        assert!(
            search(&admin, "debitore=Mario").await.is_empty(),
            "a prefix, not a word"
        );
        let (nav, iuv) = nav_of(&store, ENTE, "MENSA-BIANCHI", 0).await;
        assert_eq!(
            search(&admin, &format!("avviso={nav}")).await,
            ["MENSA-BIANCHI"]
        );
        let grouped: String = nav
            .chars()
            .collect::<Vec<_>>()
            .chunks(4)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join("%20");
        assert_eq!(
            search(&admin, &format!("avviso={grouped}")).await,
            ["MENSA-BIANCHI"],
            "a notice number typed in groups of four"
        );
        assert_eq!(
            search(&admin, &format!("iuv={iuv}")).await,
            ["MENSA-BIANCHI"]
        );
        let (installment_nav, _) = nav_of(&store, ENTE, "TARI-RATE", 2).await;
        assert_eq!(
            search(&admin, &format!("avviso={installment_nav}")).await,
            ["TARI-RATE"],
            "an installment's notice"
        );
        assert_eq!(search(&admin, "iupd=TARI-VERDI").await, ["TARI-VERDI"]);
        assert!(search(&admin, "iupd=B-ROSSI").await.is_empty());
        assert_eq!(
            sorted(search(&admin, "servizio=MENSA").await),
            set(&["MENSA-BIANCHI", "MENSA-NERI"])
        );
        assert_eq!(
            sorted(search(&admin, "ufficio=UT").await),
            set(&["TARI-ROSSI", "TARI-ROSSA", "TARI-VERDI", "TARI-RATE"])
        );
        assert_eq!(
            search(&admin, "servizio=MENSA&ufficio=UT").await,
            Vec::<String>::new()
        );
        assert_eq!(search(&admin, "stato=DRAFT").await, ["TARI-VERDI"]);
        assert_eq!(search(&admin, "stato=INVALID").await, ["MENSA-NERI"]);
        assert_eq!(search(&admin, "stato=PARTIALLY_PAID").await, ["TARI-RATE"]);
        assert_eq!(
            sorted(search(&admin, "stato=VALID").await),
            set(&["TARI-ROSSI", "TARI-ROSSA", "MENSA-BIANCHI"])
        );
        // Any option due in the range: TARI-RATE's third installment.
        assert_eq!(
            sorted(
                search(
                    &admin,
                    &format!("scadenza_dal={}&scadenza_al={}", day(160), day(250))
                )
                .await
            ),
            set(&["TARI-ROSSA", "TARI-RATE"])
        );
        let to = incasso_core::time::to_rome(Utc::now() + Duration::days(35))
            .format("%d/%m/%Y")
            .to_string();
        assert_eq!(
            search(&admin, &format!("scadenza_al={to}")).await,
            ["TARI-ROSSI"],
            "an Italian date"
        );
        assert_eq!(
            search(&admin, "servizio=TARI&stato=VALID&debitore=ross")
                .await
                .len(),
            2,
            "filters together"
        );
        // A date that is none: the form back, 400, the field named.
        let bad = admin.get(&format!("{LIST}?scadenza_dal=31-02")).await;
        status_of(&bad, StatusCode::BAD_REQUEST, "bad date");
        assert!(bad.text().contains("Scadenza dal: «31-02» non è una data"));
        assert!(bad.text().contains("value=\"31-02\""), "the form keeps it");

        // Sorted by due date, both ways; by debtor.
        assert_eq!(
            search(&admin, "ordina=scadenza&verso=asc").await,
            [
                "TARI-ROSSI",
                "MENSA-NERI",
                "MENSA-BIANCHI",
                "TARI-VERDI",
                "TARI-RATE",
                "TARI-ROSSA"
            ]
        );
        assert_eq!(
            search(&admin, "ordina=scadenza&verso=desc")
                .await
                .first()
                .map(String::as_str),
            Some("TARI-ROSSA")
        );
        assert_eq!(
            search(&admin, "ordina=debitore&verso=asc").await,
            [
                "MENSA-BIANCHI",
                "TARI-RATE",
                "MENSA-NERI",
                "TARI-ROSSA",
                "TARI-ROSSI",
                "TARI-VERDI"
            ]
        );

        // Pages: 55 more positions of TARI.
        let system = App::new(store.clone(), Settings::new("http://127.0.0.1"));
        let ctx = system.ctx(Caller::System("test"));
        let bulk: Vec<DebtPosition> = (0..55)
            .map(|i| {
                position(
                    ENTE,
                    &format!("BULK-{i:02}"),
                    100 + i,
                    &format!("Massa {i:02}"),
                    TARI_TAXONOMY,
                    1_000 + i as i64,
                    10 + i as i64,
                    0,
                )
            })
            .collect();
        incasso_app::positions::create_many(&ctx, ENTE, bulk, true)
            .await
            .unwrap();
        let first = admin.get(&format!("{LIST}?servizio=TARI")).await.text();
        assert!(first.contains("59 risultati"), "{backend:?}");
        let rows = listed(&first);
        assert_eq!(rows.len(), 50);
        assert_eq!(rows[0], "BULK-54", "newest first");
        assert!(first.contains("Pagina successiva"));
        let next = first.find("Pagina successiva").unwrap();
        let link = &first[first[..next].rfind("href=\"").unwrap()..next];
        assert!(
            link.contains("servizio=TARI") && link.contains("pagina=2"),
            "the next page keeps the filters: {link}"
        );
        let second = search(
            &admin,
            "servizio=TARI&ordina=inserimento&verso=desc&pagina=2",
        )
        .await;
        assert_eq!(second.len(), 9);
        let mut both = rows.clone();
        both.extend(second);
        both.sort();
        both.dedup();
        assert_eq!(both.len(), 59, "two pages, no position twice");
        let far = admin.get(&format!("{LIST}?pagina=201")).await;
        status_of(&far, StatusCode::BAD_REQUEST, "page too far");
        assert!(far.text().contains("restringere la ricerca"));

        // Exports: the list as it is, all of its pages, in Italian forms.
        let csv = admin
            .get(&format!("{LIST}?servizio=MENSA&formato=csv"))
            .await;
        status_of(&csv, StatusCode::OK, "csv");
        assert!(csv.content_type.starts_with("text/csv"));
        let text = csv.text();
        let mut lines = text.trim_start_matches('\u{feff}').lines();
        assert_eq!(
            lines.next(),
            Some(
                "IUPD;Debitore;Codice fiscale;Numero avviso;Servizio;Ufficio;Importo;Scadenza;Stato"
            )
        );
        let bianchi = lines
            .clone()
            .find(|l| l.starts_with("MENSA-BIANCHI"))
            .unwrap();
        assert!(bianchi.contains(";Bianchi Anna;"), "{bianchi}");
        assert!(bianchi.contains(&format!(";{nav};")), "{bianchi}");
        assert!(
            bianchi.contains(";Mensa scolastica;Ufficio refezione;45,67;"),
            "{bianchi}"
        );
        assert!(bianchi.ends_with(";Da pagare"), "{bianchi}");
        let neri = lines.clone().find(|l| l.starts_with("MENSA-NERI")).unwrap();
        assert!(neri.ends_with(";Annullata"), "{neri}");
        assert_eq!(text.lines().count(), 3);
        let all = admin
            .get(&format!("{LIST}?servizio=TARI&formato=csv"))
            .await
            .text();
        assert_eq!(all.lines().count(), 60, "every page of the search");
        let xlsx = admin
            .get(&format!("{LIST}?debitore=ross&formato=xlsx"))
            .await;
        status_of(&xlsx, StatusCode::OK, "xlsx");
        assert!(xlsx.content_type.contains("spreadsheetml"));
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(xlsx.body.clone())).unwrap();
        let mut strings = String::new();
        std::io::Read::read_to_string(
            &mut zip.by_name("xl/sharedStrings.xml").unwrap(),
            &mut strings,
        )
        .unwrap();
        for expected in [
            "IUPD",
            "TARI-ROSSI",
            "TARI-ROSSA",
            "Rossa Carla",
            "Tassa rifiuti",
        ] {
            assert!(strings.contains(expected), "{expected} in {strings}");
        }
        assert!(!strings.contains("BIANCHI"));
        let mut sheet = String::new();
        std::io::Read::read_to_string(
            &mut zip.by_name("xl/worksheets/sheet1.xml").unwrap(),
            &mut sheet,
        )
        .unwrap();
        assert!(sheet.contains("<v>100</v>"), "amounts are numbers: {sheet}");
        // Past the export's most, the store answers none (the door says
        // so in Italian; a million positions are the benchmark's).
        let s = PositionSearch {
            service: Some("TARI".into()),
            ..Default::default()
        };
        assert!(
            store
                .export_positions(ENTE, &s, 58, Utc::now())
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            store
                .export_positions(ENTE, &s, 59, Utc::now())
                .await
                .unwrap()
                .unwrap()
                .len(),
            59
        );
    }
}

#[tokio::test]
async fn a_position_s_page_and_its_notice() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let store = app.store.clone();
        let base = app.server.base.clone();
        seed(&store).await;
        let admin = clerk(
            &store,
            &base,
            "admin.a",
            rights(Role::EnteAdmin, Some(ENTE), &[], &[]),
        )
        .await;

        let page = admin.get(&format!("{LIST}/TARI-RATE")).await;
        status_of(&page, StatusCode::OK, "detail");
        let html = page.text();
        let stored = store.get_position(ENTE, "TARI-RATE").await.unwrap();
        for o in &stored.position.options {
            assert!(
                html.contains(o.notice_number.as_ref().unwrap().as_str()),
                "notice numbers"
            );
            assert!(html.contains(o.iuv.as_deref().unwrap()), "IUVs");
        }
        for expected in [
            "Gialli Sara",
            &personal_fiscal_code(6),
            "Tassa rifiuti (TARI)",
            "Ufficio tributi (UT)",
            "Pagata in parte",
            "Unica soluzione",
            "Rata",
            IBAN,
            "2026/ACC-TARI: 90,00 €",
            "2026/ACC-TARI: 30,00 €",
            // The receipt of the first installment.
            "PSP Esempio",
            "Pagata",
            // Its history, from the audit log.
            "Creazione",
            "system:test",
            "riuscita",
        ] {
            assert!(
                html.contains(expected),
                "{backend:?}: {expected} in the page"
            );
        }
        assert!(html.contains("/backoffice/posizioni/TARI-RATE/avviso.pdf"));
        assert!(
            !html.contains("/modifica\""),
            "a paid position changes no more"
        );
        let neri = admin.get(&format!("{LIST}/MENSA-NERI")).await.text();
        assert!(
            neri.contains("Annullamento"),
            "its cancellation in the history"
        );
        assert!(
            !neri.contains("avviso.pdf"),
            "a cancelled position has no notice"
        );
        let verdi = admin.get(&format!("{LIST}/TARI-VERDI")).await.text();
        for action in ["/pubblica", "/modifica", "/elimina"] {
            assert!(verdi.contains(action), "a draft: {action}");
        }
        assert!(!verdi.contains("/annulla\""));

        // The notice, whole and of one number.
        let pdf = admin.get(&format!("{LIST}/TARI-ROSSI/avviso.pdf")).await;
        status_of(&pdf, StatusCode::OK, "pdf");
        assert_eq!(pdf.content_type, "application/pdf");
        assert!(pdf.body.starts_with(b"%PDF"));
        let (installment, _) = nav_of(&store, ENTE, "TARI-RATE", 3).await;
        let one = admin
            .get(&format!("{LIST}/TARI-RATE/avviso.pdf?numero={installment}"))
            .await;
        status_of(&one, StatusCode::OK, "one notice");
        assert!(one.body.starts_with(b"%PDF"));
        // Another position's number is not this one's.
        let (other, _) = nav_of(&store, ENTE, "TARI-ROSSI", 0).await;
        let wrong = admin
            .get(&format!("{LIST}/TARI-RATE/avviso.pdf?numero={other}"))
            .await;
        status_of(&wrong, StatusCode::NOT_FOUND, "another position's number");
        status_of(
            &admin.get(&format!("{LIST}/MENSA-NERI/avviso.pdf")).await,
            StatusCode::CONFLICT,
            "a cancelled position's notice",
        );
        status_of(
            &admin.get(&format!("{LIST}/NESSUNA")).await,
            StatusCode::NOT_FOUND,
            "unknown",
        );
    }
}

/// The single entry's fields, with `changes` over a good position of TARI.
fn entry(changes: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut fields: Vec<(&'static str, String)> = vec![
        ("iupd", "BO-TEST-1".into()),
        ("servizio", "TARI".into()),
        ("ufficio", String::new()),
        ("tipo", "F".into()),
        ("codice_fiscale", personal_fiscal_code(42)),
        ("nome", "Esposito Gennaro".into()),
        ("indirizzo", "Via Toledo".into()),
        ("civico", "12".into()),
        ("cap", "80134".into()),
        ("comune", "Napoli".into()),
        ("provincia", "na".into()),
        ("nazione", "it".into()),
        ("email", "gennaro@example.org".into()),
        ("telefono", String::new()),
        ("causale", "TARI 2026 - saldo".into()),
        ("importo", "150,00".into()),
        ("scadenza", day(40)),
        ("rate", String::new()),
        ("iban", String::new()),
        ("altro_cf", String::new()),
        ("altro_nome", String::new()),
        ("altro_iban", String::new()),
        ("altro_importo", String::new()),
        ("quota_acc_1", "2026/ACC-TARI".into()),
        ("quota_imp_1", "100,00".into()),
        ("quota_acc_2", "2026/ACC-MENSA".into()),
        ("quota_imp_2", "50,00".into()),
        ("quota_acc_3", String::new()),
        ("quota_imp_3", String::new()),
        ("pubblica", String::new()),
    ];
    for (k, v) in changes {
        fields.iter_mut().find(|(f, _)| f == k).unwrap().1 = v.clone();
    }
    fields
}

async fn post(c: &Clerk, path: &str, fields: &[(&'static str, String)]) -> Answer {
    let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    c.post(path, &f).await
}

async fn count(store: &Store, ente: &str) -> u64 {
    store
        .search_positions(ente, &PositionSearch::default(), 0, 1000, Utc::now())
        .await
        .unwrap()
        .rows
        .len() as u64
}

#[tokio::test]
async fn single_entry_update_publish_cancel_and_delete() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let store = app.store.clone();
        let base = app.server.base.clone();
        seed(&store).await;
        let admin = clerk(
            &store,
            &base,
            "admin.a",
            rights(Role::EnteAdmin, Some(ENTE), &[], &[]),
        )
        .await;
        let before = count(&store, ENTE).await;

        let form = admin.get(&format!("{LIST}/nuova")).await;
        status_of(&form, StatusCode::OK, "form");
        let html = form.text();
        assert!(html.contains("Tassa rifiuti (TARI)") && html.contains("Ufficio refezione (UR)"));
        assert!(html.contains("2026/ACC-MENSA - Refezione"));

        // Bad fields: the form back, filled, 400, each field named.
        let bad = post(
            &admin,
            &format!("{LIST}/nuova"),
            &entry(&[("codice_fiscale", "RSSMRA00X".into())]),
        )
        .await;
        status_of(&bad, StatusCode::BAD_REQUEST, "bad fiscal code");
        let html = bad.text();
        assert!(
            html.contains(
                "Codice fiscale o partita IVA del debitore: codice fiscale del debitore non valido"
            ),
            "{html}"
        );
        assert!(
            html.contains("value=\"RSSMRA00X\""),
            "the form comes back filled"
        );
        assert!(html.contains("value=\"Esposito Gennaro\""));
        assert!(html.contains("aria-invalid=\"true\""));
        let bad = post(
            &admin,
            &format!("{LIST}/nuova"),
            &entry(&[("importo", "12,3x".into()), ("scadenza", "domani".into())]),
        )
        .await;
        status_of(&bad, StatusCode::BAD_REQUEST, "bad amount");
        assert!(
            bad.text()
                .contains("Importo in euro: «12,3x» non è un importo in euro")
        );
        assert!(bad.text().contains("Scadenza: «domani» non è una data"));
        let bad = post(
            &admin,
            &format!("{LIST}/nuova"),
            &entry(&[("quota_imp_2", "40,00".into())]),
        )
        .await;
        status_of(&bad, StatusCode::BAD_REQUEST, "quotas");
        assert!(
            bad.text().contains("Quote di accertamento: le quote di accertamento sommano a 140,00 ma il versamento è di 150,00"),
            "{}",
            bad.text()
        );
        let bad = post(
            &admin,
            &format!("{LIST}/nuova"),
            &entry(&[("scadenza", day(-3)), ("servizio", "NESSUNO".into())]),
        )
        .await;
        status_of(&bad, StatusCode::BAD_REQUEST, "past date, unknown service");
        assert!(
            bad.text()
                .contains("Servizio: scegliere un servizio del catalogo")
        );
        let bad = post(
            &admin,
            &format!("{LIST}/nuova"),
            &entry(&[("scadenza", day(-3))]),
        )
        .await;
        status_of(&bad, StatusCode::BAD_REQUEST, "past date");
        assert!(
            bad.text()
                .contains("Scadenza: la data di scadenza deve essere futura")
        );
        let bad = post(
            &admin,
            &format!("{LIST}/nuova"),
            &entry(&[("iupd", "TARI-ROSSI".into())]),
        )
        .await;
        status_of(&bad, StatusCode::BAD_REQUEST, "an iupd taken");
        assert!(
            bad.text()
                .contains("Codice della posizione (IUPD): esiste già")
        );
        // A forged form: nothing.
        let forged = admin
            .post_raw(
                &format!("{LIST}/nuova"),
                &[("iupd", "BO-FORGED"), ("csrf", "x")],
            )
            .await;
        status_of(&forged, StatusCode::FORBIDDEN, "no CSRF");
        assert_eq!(
            count(&store, ENTE).await,
            before,
            "{backend:?}: nothing written"
        );

        // A good one: a draft, in the service's office, with its quotas.
        let ok = post(&admin, &format!("{LIST}/nuova"), &entry(&[])).await;
        status_of(&ok, StatusCode::SEE_OTHER, "created");
        assert_eq!(
            ok.location.as_deref(),
            Some("/backoffice/posizioni/BO-TEST-1?esito=creata")
        );
        let stored = store.get_position(ENTE, "BO-TEST-1").await.unwrap();
        assert_eq!(stored.position.status, PositionStatus::Draft);
        assert_eq!(stored.placement.service.as_deref(), Some("TARI"));
        assert_eq!(stored.placement.office.as_deref(), Some("UT"));
        assert_eq!(
            stored.position.office_name.as_deref(),
            Some("Ufficio tributi")
        );
        assert_eq!(stored.position.debtor.province.as_deref(), Some("NA"));
        let option = &stored.position.options[0];
        assert_eq!(option.amount, Cents(15_000));
        assert_eq!(option.transfers[0].category, TARI_TAXONOMY);
        assert_eq!(
            option.transfers[0].iban.as_deref(),
            Some(IBAN),
            "the Ente's"
        );
        assert_eq!(option.transfers[0].quotas.len(), 2);
        assert_eq!(option.transfers[0].quotas[1].amount, Cents(5_000));
        let nav = option.notice_number.clone().unwrap();
        let shown = admin
            .get(&format!("{LIST}/BO-TEST-1?esito=creata"))
            .await
            .text();
        assert!(shown.contains("La posizione è stata salvata."));
        assert!(shown.contains("Esposito Gennaro"));

        // Update: the same form, filled; installments and another Ente.
        let edit = admin.get(&format!("{LIST}/BO-TEST-1/modifica")).await;
        status_of(&edit, StatusCode::OK, "edit form");
        let html = edit.text();
        assert!(html.contains("value=\"150,00\""));
        assert!(html.contains("value=\"BO-TEST-1\"") && html.contains("readonly"));
        assert!(html.contains("<option value=\"2026/ACC-MENSA\" selected>"));
        let changed = post(
            &admin,
            &format!("{LIST}/BO-TEST-1/modifica"),
            &entry(&[
                ("importo", "180,00".into()),
                ("rate", "3".into()),
                ("altro_cf", OTHER_ENTE.into()),
                ("altro_iban", OTHER_IBAN.into()),
                ("altro_importo", "30,00".into()),
            ]),
        )
        .await;
        status_of(&changed, StatusCode::SEE_OTHER, "updated");
        let stored = store.get_position(ENTE, "BO-TEST-1").await.unwrap();
        let p = &stored.position;
        assert_eq!(p.options.len(), 4, "single solution and 3 installments");
        assert_eq!(p.options[0].amount, Cents(18_000));
        assert_eq!(
            p.options[0].notice_number.as_ref(),
            Some(&nav),
            "the notice stays"
        );
        assert_eq!(p.options[1].amount, Cents(6_000));
        assert_eq!(
            p.options[0].transfers[1].organization_fiscal_code,
            OTHER_ENTE
        );
        assert_eq!(p.options[0].transfers[1].amount, Cents(3_000));
        assert_eq!(p.options[1].transfers[1].amount, Cents(1_000));
        assert_eq!(
            Cents::sum(p.options[1].transfers[0].quotas.iter().map(|q| q.amount)),
            Some(Cents(5_000)),
            "the installments' quotas scaled to their share"
        );
        let bad = post(
            &admin,
            &format!("{LIST}/BO-TEST-1/modifica"),
            &entry(&[("rate", "1".into())]),
        )
        .await;
        status_of(&bad, StatusCode::BAD_REQUEST, "one installment");
        assert!(
            bad.text()
                .contains("Numero di rate: da 2 a 24 rate, oppure nessuna")
        );
        assert_eq!(
            store.get_position(ENTE, "BO-TEST-1").await.unwrap().version,
            stored.version,
            "nothing written"
        );

        // Publish, then cancel.
        let published = admin.post(&format!("{LIST}/BO-TEST-1/pubblica"), &[]).await;
        status_of(&published, StatusCode::SEE_OTHER, "publish");
        assert_eq!(
            store
                .get_position(ENTE, "BO-TEST-1")
                .await
                .unwrap()
                .position
                .status,
            PositionStatus::Valid
        );
        let again = admin.post(&format!("{LIST}/BO-TEST-1/pubblica"), &[]).await;
        assert!(
            again.status.is_client_error(),
            "published twice: {}",
            again.status
        );
        let forged = admin
            .post_raw(&format!("{LIST}/BO-TEST-1/annulla"), &[("csrf", "x")])
            .await;
        status_of(&forged, StatusCode::FORBIDDEN, "cancel without CSRF");
        let cancelled = admin.post(&format!("{LIST}/BO-TEST-1/annulla"), &[]).await;
        status_of(&cancelled, StatusCode::SEE_OTHER, "cancel");
        assert_eq!(
            store
                .get_position(ENTE, "BO-TEST-1")
                .await
                .unwrap()
                .position
                .status,
            PositionStatus::Invalid
        );
        let history = admin.get(&format!("{LIST}/BO-TEST-1")).await.text();
        for event in [
            "Creazione",
            "Modifica",
            "Pubblicazione",
            "Annullamento",
            "operator:admin.a",
        ] {
            assert!(history.contains(event), "{event}");
        }

        // A draft deleted.
        let ok = post(
            &admin,
            &format!("{LIST}/nuova"),
            &entry(&[("iupd", "BO-TEST-2".into())]),
        )
        .await;
        status_of(&ok, StatusCode::SEE_OTHER, "second");
        let gone = admin.post(&format!("{LIST}/BO-TEST-2/elimina"), &[]).await;
        status_of(&gone, StatusCode::SEE_OTHER, "delete");
        assert!(store.get_position(ENTE, "BO-TEST-2").await.is_err());
        // An iupd made by incasso when none is given, published at once.
        let ok = post(
            &admin,
            &format!("{LIST}/nuova"),
            &entry(&[("iupd", String::new()), ("pubblica", "1".into())]),
        )
        .await;
        status_of(&ok, StatusCode::SEE_OTHER, "generated iupd");
        let made = ok.location.unwrap();
        assert!(made.starts_with("/backoffice/posizioni/BO-"), "{made}");
        let iupd = made
            .trim_start_matches("/backoffice/posizioni/")
            .trim_end_matches("?esito=creata");
        assert_eq!(
            store
                .get_position(ENTE, iupd)
                .await
                .unwrap()
                .position
                .status,
            PositionStatus::Valid
        );
    }
}

#[tokio::test]
async fn rights_tenancy_and_office_scope() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let store = app.store.clone();
        let base = app.server.base.clone();
        seed(&store).await;
        let unchanged = |iupd: &'static str| {
            let store = store.clone();
            async move { store.get_position(ENTE, iupd).await.unwrap().version }
        };
        let versions = [
            unchanged("TARI-ROSSI").await,
            unchanged("TARI-VERDI").await,
            unchanged("MENSA-BIANCHI").await,
        ];
        let count_a = count(&store, ENTE).await;
        let (rossi_nav, _) = nav_of(&store, ENTE, "TARI-ROSSI", 0).await;

        // Another Ente's administrator: none of Ente A's positions.
        let other = clerk(
            &store,
            &base,
            "admin.b",
            rights(Role::EnteAdmin, Some(OTHER_ENTE), &[], &[]),
        )
        .await;
        let html = other.get(LIST).await.text();
        assert_eq!(listed(&html), ["B-ROSSI"], "{backend:?}");
        assert!(search(&other, "debitore=rossi").await == ["B-ROSSI"]);
        assert!(
            search(&other, &format!("avviso={rossi_nav}"))
                .await
                .is_empty()
        );
        assert!(search(&other, "iupd=TARI-ROSSI").await.is_empty());
        let csv = other.get(&format!("{LIST}?formato=csv")).await.text();
        assert!(!csv.contains("TARI-"), "{csv}");
        for path in [
            format!("{LIST}/TARI-ROSSI"),
            format!("{LIST}/TARI-ROSSI/avviso.pdf"),
            format!("{LIST}/TARI-ROSSI/avviso.pdf?numero={rossi_nav}"),
            format!("{LIST}/TARI-VERDI/modifica"),
        ] {
            let a = other.get(&path).await;
            assert!(
                a.status == StatusCode::NOT_FOUND || a.status == StatusCode::FORBIDDEN,
                "{backend:?} {path}: {}",
                a.status
            );
            assert!(!a.text().contains("Rossi Mario") && !a.text().contains("Verdi Luca"));
        }
        for action in ["pubblica", "annulla", "elimina"] {
            for iupd in ["TARI-ROSSI", "TARI-VERDI"] {
                let a = other.post(&format!("{LIST}/{iupd}/{action}"), &[]).await;
                assert!(
                    a.status == StatusCode::NOT_FOUND || a.status == StatusCode::FORBIDDEN,
                    "{action} {iupd}: {}",
                    a.status
                );
            }
        }
        let a = post(&other, &format!("{LIST}/TARI-VERDI/modifica"), &entry(&[])).await;
        assert!(
            a.status == StatusCode::NOT_FOUND
                || a.status == StatusCode::FORBIDDEN
                || a.status == StatusCode::BAD_REQUEST,
            "update: {}",
            a.status
        );
        assert!(store.get_position(OTHER_ENTE, "TARI-VERDI").await.is_err());

        // An office operator of UR (refezione), who may write positions.
        let office = clerk(
            &store,
            &base,
            "ufficio.ur",
            rights(
                Role::OfficeOperator,
                Some(ENTE),
                &[(Area::Positions, Access::Write)],
                &["UR"],
            ),
        )
        .await;
        let page = office.get(LIST).await;
        status_of(&page, StatusCode::OK, "office list");
        let html = page.text();
        assert_eq!(sorted(listed(&html)), set(&["MENSA-BIANCHI", "MENSA-NERI"]));
        assert!(html.contains("2 risultati"));
        assert!(
            !html.contains("Ufficio tributi"),
            "the other office is no choice"
        );
        assert!(search(&office, "ufficio=UT").await.is_empty());
        assert!(search(&office, "servizio=TARI").await.is_empty());
        assert!(search(&office, "debitore=rossi").await.is_empty());
        assert!(
            search(&office, &format!("avviso={rossi_nav}"))
                .await
                .is_empty()
        );
        let csv = office.get(&format!("{LIST}?formato=csv")).await.text();
        assert_eq!(csv.lines().count(), 3, "{csv}");
        for path in [
            format!("{LIST}/TARI-ROSSI"),
            format!("{LIST}/TARI-ROSSI/avviso.pdf"),
            format!("{LIST}/TARI-VERDI/modifica"),
        ] {
            let a = office.get(&path).await;
            status_of(&a, StatusCode::NOT_FOUND, &path);
            assert!(!a.text().contains("Rossi Mario"));
        }
        for action in ["pubblica", "annulla", "elimina"] {
            for iupd in ["TARI-ROSSI", "TARI-VERDI"] {
                let a = office.post(&format!("{LIST}/{iupd}/{action}"), &[]).await;
                status_of(&a, StatusCode::NOT_FOUND, &format!("{action} {iupd}"));
            }
        }
        let a = post(
            &office,
            &format!("{LIST}/TARI-VERDI/modifica"),
            &entry(&[("servizio", "MENSA".into()), ("iupd", "TARI-VERDI".into())]),
        )
        .await;
        status_of(&a, StatusCode::NOT_FOUND, "update another office's");
        // Their own office's: open, and create in it; not in another.
        status_of(
            &office.get(&format!("{LIST}/MENSA-BIANCHI")).await,
            StatusCode::OK,
            "own",
        );
        let pdf = office
            .get(&format!("{LIST}/MENSA-BIANCHI/avviso.pdf"))
            .await;
        assert!(pdf.body.starts_with(b"%PDF"));
        let form = office.get(&format!("{LIST}/nuova")).await.text();
        assert!(
            !form.contains("Tassa rifiuti (TARI)"),
            "another office's service is no choice"
        );
        let a = post(
            &office,
            &format!("{LIST}/nuova"),
            &entry(&[
                ("iupd", "UR-NO".into()),
                ("ufficio", "UT".into()),
                ("quota_acc_1", String::new()),
                ("quota_imp_1", String::new()),
                ("quota_acc_2", String::new()),
                ("quota_imp_2", String::new()),
            ]),
        )
        .await;
        status_of(&a, StatusCode::BAD_REQUEST, "in another office");
        assert!(
            a.text()
                .contains("Ufficio: scegliere uno dei propri uffici")
        );
        assert!(store.get_position(ENTE, "UR-NO").await.is_err());
        let a = post(
            &office,
            &format!("{LIST}/nuova"),
            &entry(&[
                ("iupd", "UR-SI".into()),
                ("servizio", "MENSA".into()),
                ("quota_acc_1", "2026/ACC-MENSA".into()),
                ("quota_imp_1", "150,00".into()),
                ("quota_acc_2", String::new()),
                ("quota_imp_2", String::new()),
            ]),
        )
        .await;
        status_of(&a, StatusCode::SEE_OTHER, "in their office");
        let made = store.get_position(ENTE, "UR-SI").await.unwrap();
        assert_eq!(made.placement.office.as_deref(), Some("UR"));
        store_delete(&store, "UR-SI").await;

        // An accountant reads everything and changes nothing.
        let accountant = clerk(
            &store,
            &base,
            "conti.a",
            rights(Role::Accountant, Some(ENTE), &[], &[]),
        )
        .await;
        let html = accountant.get(LIST).await.text();
        assert_eq!(sorted(listed(&html)).len(), 6);
        assert!(!html.contains("Nuova posizione"));
        let page = accountant.get(&format!("{LIST}/TARI-VERDI")).await;
        status_of(&page, StatusCode::OK, "accountant detail");
        assert!(!page.text().contains("/pubblica"), "no actions offered");
        assert!(
            accountant
                .get(&format!("{LIST}/TARI-ROSSI/avviso.pdf"))
                .await
                .body
                .starts_with(b"%PDF")
        );
        status_of(
            &accountant.get(&format!("{LIST}/nuova")).await,
            StatusCode::FORBIDDEN,
            "form",
        );
        status_of(
            &accountant.get(&format!("{LIST}/TARI-VERDI/modifica")).await,
            StatusCode::FORBIDDEN,
            "edit form",
        );
        let a = post(
            &accountant,
            &format!("{LIST}/nuova"),
            &entry(&[("iupd", "CONTI-1".into())]),
        )
        .await;
        status_of(&a, StatusCode::FORBIDDEN, "create");
        let a = post(
            &accountant,
            &format!("{LIST}/TARI-VERDI/modifica"),
            &entry(&[("iupd", "TARI-VERDI".into())]),
        )
        .await;
        status_of(&a, StatusCode::FORBIDDEN, "update");
        for action in ["pubblica", "annulla", "elimina"] {
            for iupd in ["TARI-ROSSI", "TARI-VERDI"] {
                let a = accountant
                    .post(&format!("{LIST}/{iupd}/{action}"), &[])
                    .await;
                status_of(&a, StatusCode::FORBIDDEN, &format!("{action} {iupd}"));
            }
        }

        // An operator without the Positions area: nothing.
        let reporting = clerk(
            &store,
            &base,
            "rend.a",
            rights(
                Role::OfficeOperator,
                Some(ENTE),
                &[(Area::Reporting, Access::Read)],
                &["UT"],
            ),
        )
        .await;
        for path in [
            LIST.to_string(),
            format!("{LIST}/TARI-ROSSI"),
            format!("{LIST}/TARI-ROSSI/avviso.pdf"),
        ] {
            status_of(&reporting.get(&path).await, StatusCode::FORBIDDEN, &path);
        }

        // Nothing was written by any of them.
        assert_eq!(count(&store, ENTE).await, count_a);
        assert_eq!(
            [
                unchanged("TARI-ROSSI").await,
                unchanged("TARI-VERDI").await,
                unchanged("MENSA-BIANCHI").await,
            ],
            versions
        );
        assert!(store.get_position(ENTE, "CONTI-1").await.is_err());
    }
}

async fn store_delete(store: &Store, iupd: &str) {
    store.delete_position(ENTE, iupd).await.unwrap();
}

/// A supply's positions are placed as the back office's own are: by the
/// service whose taxonomy their transfer carries, in that service's office.
/// So an office operator finds the supply's positions of their office, and
/// only those, and a search by service finds them.
#[tokio::test]
async fn a_supply_s_positions_belong_to_their_service_s_office() {
    const SUPPLY: &str = "codice;servizio;codice_fiscale;nominativo;rata;importo;causale;scadenza;iuv;accertamento;operazione
SUP-TARI;TARI;RSSMRA85T10A562S;Mario Rossi;0;300,00;TARI 2027;31/03/2027;;2026/ACC-TARI;
SUP-MENSA;MENSA;RSSMRA85T10A562S;Mario Rossi;0;45,00;Mensa 2027;30/04/2027;;2026/ACC-MENSA;
";
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (store, base) = (&app.store, app.server.base.as_str());
        catalogue(store).await;
        let admin = clerk(
            store,
            base,
            "admin",
            rights(Role::EnteAdmin, Some(ENTE), &[], &[]),
        )
        .await;
        let sent = admin
            .post_file(
                "/backoffice/forniture/carica",
                &[("tracciato", "incasso-csv"), ("servizio", "")],
                "file",
                "tari.csv",
                SUPPLY.as_bytes().to_vec(),
            )
            .await;
        assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.text());
        let page = sent.location.unwrap();
        let mut loaded = false;
        for _ in 0..100 {
            if admin
                .get(&page)
                .await
                .text()
                .contains("<strong>Caricata</strong>")
            {
                loaded = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(loaded, "{backend:?}: the supply did not load");
        let ut = clerk(
            store,
            base,
            "office.tributi",
            rights(
                Role::OfficeOperator,
                Some(ENTE),
                &[
                    (Area::Positions, Access::Read),
                    (Area::Supplies, Access::Write),
                ],
                &["UT"],
            ),
        )
        .await;
        let ur = clerk(
            store,
            base,
            "office.refezione",
            rights(
                Role::OfficeOperator,
                Some(ENTE),
                &[
                    (Area::Positions, Access::Read),
                    (Area::Supplies, Access::Read),
                ],
                &["UR"],
            ),
        )
        .await;
        let debtor = "debitore=RSSMRA85T10A562S";
        assert_eq!(search(&ut, debtor).await, ["SUP-TARI"], "{backend:?}");
        assert_eq!(search(&ur, debtor).await, ["SUP-MENSA"], "{backend:?}");
        assert_eq!(
            search(&admin, "servizio=MENSA").await,
            ["SUP-MENSA"],
            "{backend:?}"
        );
        status_of(
            &ut.get(&format!("{LIST}/SUP-MENSA")).await,
            StatusCode::NOT_FOUND,
            "another office's supply position",
        );

        // The supplies themselves: the administrator's, of two offices, is
        // no office operator's to read (its report and notices hold both
        // offices' debtors).
        let archive = ut.get("/backoffice/forniture").await;
        status_of(&archive, StatusCode::OK, "the archive");
        assert!(
            !archive.text().contains(&format!("href=\"{page}\"")),
            "{backend:?}"
        );
        for path in [
            page.clone(),
            format!("{page}/rapporto.csv"),
            format!("{page}/avvisi.zip"),
        ] {
            status_of(&ut.get(&path).await, StatusCode::NOT_FOUND, &path);
        }
        // Their own, of their office, they follow; the other office does not.
        let own = ut
            .post_file(
                "/backoffice/forniture/carica",
                &[("tracciato", "incasso-csv"), ("servizio", "")],
                "file",
                "tari-ut.csv",
                "codice;servizio;codice_fiscale;nominativo;rata;importo;causale;scadenza;iuv;accertamento;operazione
UT-ONLY;TARI;RSSMRA85T10A562S;Mario Rossi;0;10,00;TARI 2027;31/03/2027;;2026/ACC-TARI;
"
                .as_bytes()
                .to_vec(),
            )
            .await;
        assert_eq!(own.status, StatusCode::SEE_OTHER, "{}", own.text());
        let own_page = own.location.unwrap();
        status_of(&ut.get(&own_page).await, StatusCode::OK, "their own supply");
        assert!(
            ut.get("/backoffice/forniture")
                .await
                .text()
                .contains(&format!("href=\"{own_page}\"")),
            "{backend:?}: their supply in their archive"
        );
        status_of(
            &ur.get(&own_page).await,
            StatusCode::NOT_FOUND,
            "UT's supply, by UR",
        );
        status_of(
            &admin.get(&own_page).await,
            StatusCode::OK,
            "UT's supply, by the administrator",
        );
    }
}
