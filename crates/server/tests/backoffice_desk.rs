//! The Sportello Digitale's pages (issue 18) over HTTP, on both
//! databases: a counter clerk of Ente A opens the desk from the home page,
//! issues a position from a service's form (errors named by field with
//! nothing made; the summary; *Emetti* twice makes one position), prints
//! the notice and the avviso PA, finds the person's open positions by
//! fiscal code and reprints, sees the day's totals, exports and closes it
//! (then nothing more is issued there); every form needs its CSRF token;
//! Ente B's clerk and A's accountant get nothing of A's and change nothing.

use crate::common::app;
use crate::common::backoffice;
use crate::common::desk_world;

use app::gpd::{ENTE, OTHER_ENTE};
use app::spawn_app;
use backoffice::{Clerk, clerk, rights};
use desk_world::{DEBTOR, DESK, SERVICE, desk_world, input_value};
use incasso_core::access::Role;
use incasso_testkit::backends;
use reqwest::StatusCode;

/// The PDF's text, or `None` (with a note) without pdftotext, unless
/// INCASSO_REQUIRE_TOOLS=1.
fn pdf_text(pdf: &[u8]) -> Option<String> {
    let dir = std::env::temp_dir().join(format!("incasso-desk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("d-{}.pdf", pdf.len()));
    std::fs::write(&path, pdf).unwrap();
    match std::process::Command::new("pdftotext")
        .arg("-layout")
        .arg(&path)
        .arg("-")
        .output()
    {
        Ok(out) if out.status.success() => Some(String::from_utf8(out.stdout).unwrap()),
        _ if std::env::var("INCASSO_REQUIRE_TOOLS").is_ok_and(|v| v == "1") => {
            panic!("pdftotext is required (poppler-utils; scripts/test.sh installs it)")
        }
        _ => {
            eprintln!("pdftotext missing: the PDF's text is not checked");
            None
        }
    }
}

fn form_fields<'a>(
    token: &'a str,
    fc: &'a str,
    pratica: &'a str,
    amount: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("token", token),
        ("debtor_fiscal_code", fc),
        ("debtor_name", "Mario Rossi"),
        ("email", "mario.rossi@example.it"),
        ("pratica", pratica),
        ("amount", amount),
    ]
}

async fn desk_positions(store: &incasso_store::Store) -> usize {
    let today = incasso_core::time::to_rome(chrono::Utc::now())
        .date()
        .to_string();
    store.desk_issued(ENTE, DESK, &today).await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_issues_prints_finds_and_closes_the_day() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        desk_world(&app).await;
        let base = app.server.base.as_str();
        let store = &app.store;
        let lucia: Clerk = clerk(
            store,
            base,
            "lucia.sportello",
            rights(Role::CounterClerk, Some(ENTE), &[], &["ANAG"]),
        )
        .await;

        // The home page leads to the desk, the desk to the service.
        let home = lucia.get("/backoffice/").await;
        assert!(
            home.text().contains("href=\"/backoffice/sportello\""),
            "{backend:?}: {}",
            home.text()
        );
        let desks = lucia.get("/backoffice/sportello").await;
        assert_eq!(desks.status, StatusCode::OK);
        assert!(desks.text().contains("/backoffice/sportello/SPORTELLO_01"));
        assert!(
            !desks.text().contains("Nuovo sportello"),
            "a clerk adds no desk"
        );
        let desk = lucia.get("/backoffice/sportello/SPORTELLO_01").await;
        assert_eq!(desk.status, StatusCode::OK, "{}", desk.text());
        let service_url = format!("/backoffice/sportello/{DESK}/servizi/{SERVICE}");
        assert!(
            desk.text()
                .contains(&format!("href=\"{service_url}\" autofocus"))
        );

        // The form: the debtor's fiscal code has the focus.
        let page = lucia.get(&service_url).await;
        assert_eq!(page.status, StatusCode::OK);
        let html = page.text();
        assert!(html.contains("id=\"f-debtor_fiscal_code\""));
        let first = html.find("id=\"f-debtor_fiscal_code\"").unwrap();
        assert!(
            html[first..first + 800].contains("autofocus"),
            "the first field has the focus"
        );
        let token = input_value(&html, "token");

        // Wrong answers: 400, each named, nothing made.
        let bad = lucia
            .post(
                &service_url,
                &form_fields(&token, "RSSMRA85T10A562X", "12", "9"),
            )
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text());
        for anchor in ["#f-debtor_fiscal_code", "#f-pratica", "#f-amount-0"] {
            assert!(bad.text().contains(anchor), "{anchor}: {}", bad.text());
        }
        assert_eq!(desk_positions(store).await, 0);

        // Without the CSRF token: refused.
        let forged = lucia
            .post_raw(
                &format!("{service_url}/emetti"),
                &form_fields(&token, DEBTOR, "AB1234", "1"),
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        assert_eq!(desk_positions(store).await, 0);

        // The summary, then issued; issued twice: one position.
        let fields = form_fields(&token, DEBTOR, "AB1234", "1");
        let summary = lucia.post(&service_url, &fields).await;
        assert_eq!(summary.status, StatusCode::OK, "{}", summary.text());
        assert!(summary.text().contains("32,00 €"));
        assert!(summary.text().contains("id=\"emetti\" autofocus"));
        let issued = lucia.post(&format!("{service_url}/emetti"), &fields).await;
        assert_eq!(issued.status, StatusCode::SEE_OTHER, "{}", issued.text());
        let location = issued.location.clone().unwrap();
        assert!(
            location.starts_with("/backoffice/sportello/SPORTELLO_01/emesse/SD-"),
            "{location}"
        );
        let again = lucia.post(&format!("{service_url}/emetti"), &fields).await;
        assert_eq!(again.location.as_deref(), Some(location.as_str()));
        assert_eq!(desk_positions(store).await, 1, "{backend:?}");
        let iupd = location.rsplit('/').next().unwrap().to_string();
        let stored = store.get_position(ENTE, &iupd).await.unwrap();
        let option = &stored.position.options[0];
        let nav = option.notice_number.as_ref().unwrap().as_str().to_string();
        let iuv = option.iuv.clone().unwrap();
        assert_eq!(option.amount.0, 3200);
        assert_eq!(option.transfers[0].quotas[0].accertamento.code, "ACC-ANAG");

        // The issued page, and its two PDFs.
        let page = lucia.get(&location).await;
        assert_eq!(page.status, StatusCode::OK);
        let html = page.text();
        assert!(html.contains(&iuv), "{html}");
        assert!(html.contains("id=\"stampa-avviso\" autofocus"));
        assert!(html.contains("2026/ACC-ANAG - Diritti di segreteria 2026: 32,00 €"));
        let notice = lucia.get(&format!("{location}/avviso.pdf")).await;
        assert_eq!(notice.status, StatusCode::OK);
        assert_eq!(notice.content_type, "application/pdf");
        assert!(notice.body.starts_with(b"%PDF-"));
        let copy = lucia.get(&format!("{location}/avviso-pa.pdf")).await;
        assert_eq!(copy.status, StatusCode::OK);
        assert!(copy.body.starts_with(b"%PDF-"));
        if let Some(text) = pdf_text(&copy.body) {
            for needle in [
                "AVVISO PA",
                "Sportello polifunzionale (SPORTELLO_01)",
                "Operatore lucia.sportello",
                iuv.as_str(),
                "RSSMRA85T10A562S",
                "32,00 €",
                "2026/ACC-ANAG",
                "Diritti di segreteria 2026: 32,00 €",
            ] {
                assert!(
                    text.contains(needle),
                    "{needle} not in the avviso PA:\n{text}"
                );
            }
        }
        if let Some(text) = pdf_text(&notice.body) {
            let groups = nav
                .as_bytes()
                .chunks(4)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join(" ");
            assert!(
                text.contains(&groups),
                "{groups} not in the notice:\n{text}"
            );
        }
        // No SMTP server here: the e-mail is refused, said plainly.
        let mail = lucia
            .post(
                &format!("{location}/email"),
                &[("email", "mario.rossi@example.it")],
            )
            .await;
        assert_eq!(mail.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(mail.text().contains("e-mail non è configurato"));

        // Found by fiscal code, and reprinted.
        let found = lucia
            .post(
                &format!("/backoffice/sportello/{DESK}/cerca"),
                &[("codice_fiscale", &DEBTOR.to_lowercase())],
            )
            .await;
        assert_eq!(found.status, StatusCode::OK);
        let reprint = format!("/backoffice/sportello/{DESK}/ristampa/{iupd}/avviso.pdf");
        assert!(found.text().contains(&reprint), "{}", found.text());
        let pdf = lucia.get(&reprint).await;
        assert!(pdf.body.starts_with(b"%PDF-"));
        let wrong = lucia
            .post(
                &format!("/backoffice/sportello/{DESK}/cerca"),
                &[("codice_fiscale", "ABC")],
            )
            .await;
        assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
        assert!(wrong.text().contains("codice-fiscale-errore"));

        // The day: totals, export, closing (twice), then no more issuing.
        let day_url = format!("/backoffice/sportello/{DESK}/giornata");
        let day = lucia.get(&day_url).await;
        assert_eq!(day.status, StatusCode::OK);
        assert!(
            day.text().contains("id=\"totale-emesso\">32,00 €"),
            "{}",
            day.text()
        );
        let today = incasso_core::time::to_rome(chrono::Utc::now()).date();
        let csv = lucia
            .get(&format!("{day_url}?giorno={today}&formato=csv"))
            .await;
        assert_eq!(csv.status, StatusCode::OK);
        assert!(csv.content_type.starts_with("text/csv"));
        assert!(csv.text().contains(&nav));
        assert!(csv.text().contains("Totale emesso"));
        let xlsx = lucia
            .get(&format!("{day_url}?giorno={today}&formato=xlsx"))
            .await;
        assert!(xlsx.body.starts_with(b"PK"));
        let giorno = today.to_string();
        for _ in 0..2 {
            let closed = lucia
                .post(&format!("{day_url}/chiudi"), &[("giorno", &giorno)])
                .await;
            assert_eq!(closed.status, StatusCode::SEE_OTHER, "{}", closed.text());
        }
        let day = lucia.get(&format!("{day_url}?giorno={giorno}")).await;
        assert!(day.text().contains("id=\"chiusa\""));
        assert!(!day.text().contains("id=\"chiudi\""));
        let page = lucia.get(&service_url).await;
        let token2 = input_value(&page.text(), "token");
        let late = lucia
            .post(
                &format!("{service_url}/emetti"),
                &form_fields(&token2, DEBTOR, "CD5678", "0"),
            )
            .await;
        assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.text());
        assert!(late.text().contains("è chiusa"));
        assert_eq!(desk_positions(store).await, 1);

        // Ente B's clerk: A's desk, position and PDFs are not there.
        let b = clerk(
            store,
            base,
            "b.sportello",
            rights(Role::CounterClerk, Some(OTHER_ENTE), &[], &["ANAG"]),
        )
        .await;
        for url in [
            format!("/backoffice/sportello/{DESK}"),
            location.clone(),
            format!("{location}/avviso.pdf"),
            format!("{location}/avviso-pa.pdf"),
            format!("{day_url}?giorno={giorno}"),
            reprint.clone(),
        ] {
            let a = b.get(&url).await;
            assert!(
                a.status == StatusCode::NOT_FOUND || a.status == StatusCode::FORBIDDEN,
                "{backend:?}: B opened {url}: {}",
                a.status
            );
            assert!(!a.text().contains(&iuv), "{url} shows A's IUV");
            assert!(!a.text().contains(DEBTOR), "{url} shows A's debtor");
        }
        let b_desks = b.get("/backoffice/sportello").await;
        assert!(!b_desks.text().contains(DESK));
        let b_page = b.get(&service_url).await;
        assert_eq!(b_page.status, StatusCode::NOT_FOUND);
        let b_found = b
            .post(
                &format!("/backoffice/sportello/{DESK}/cerca"),
                &[("codice_fiscale", DEBTOR)],
            )
            .await;
        assert_eq!(b_found.status, StatusCode::NOT_FOUND);
        let b_close = b
            .post(&format!("{day_url}/chiudi"), &[("giorno", &giorno)])
            .await;
        assert_eq!(b_close.status, StatusCode::NOT_FOUND);

        // A's accountant reads the day, and issues nothing.
        let accountant = clerk(
            store,
            base,
            "ragioneria.a",
            rights(Role::Accountant, Some(ENTE), &[], &[]),
        )
        .await;
        let day = accountant.get(&format!("{day_url}?giorno={giorno}")).await;
        assert_eq!(day.status, StatusCode::OK);
        let desk = accountant
            .get(&format!("/backoffice/sportello/{DESK}"))
            .await;
        assert!(
            !desk.text().contains(&service_url),
            "no service to issue from"
        );
        let forbidden = accountant
            .post(
                &format!("{service_url}/emetti"),
                &form_fields(&token2, DEBTOR, "CD5678", "0"),
            )
            .await;
        assert_eq!(forbidden.status, StatusCode::FORBIDDEN);

        // An administrator adds a desk from the page; a bad one is refused.
        let admin = clerk(
            store,
            base,
            "admin.a",
            rights(Role::EnteAdmin, Some(ENTE), &[], &[]),
        )
        .await;
        let added = admin
            .post(
                "/backoffice/sportello",
                &[
                    ("code", "SPORTELLO_02"),
                    ("name", "Sportello tributi"),
                    ("office", "TRIB"),
                ],
            )
            .await;
        assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.text());
        assert_eq!(
            added.location.as_deref(),
            Some("/backoffice/sportello/SPORTELLO_02")
        );
        let refused = admin
            .post(
                "/backoffice/sportello",
                &[("code", "SPORTELLO_02"), ("name", "Doppio"), ("office", "")],
            )
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        // The clerk of ANAG does not reach the TRIB desk.
        let trib = lucia.get("/backoffice/sportello/SPORTELLO_02").await;
        assert_eq!(trib.status, StatusCode::NOT_FOUND);
    }
}
