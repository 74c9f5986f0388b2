//! Paying a service on the portal in a real browser (issue 17): headless
//! Chromium on a desktop (1280 px) and a phone (375 px) goes through every
//! state of a spontaneous payment's form: the list of services, the empty
//! form, the form with every error (a table of amounts at the Comune, an
//! amount typed out of bounds at the ASL), the summary, 'Modifica' back
//! with the answers kept, and the confirmation that lands on pagoPA
//! Checkout. On each page axe-core finds no WCAG 2.1 A/AA violation, the
//! console holds no error and nothing overflows sideways; screenshots go
//! to the folder printed.
//!
//! The back office's form editor too: the form as saved, every error
//! next to its input, a field block added.
//!
//! SQLite only, as the other browser tests: the data paths run on both
//! databases in `portal_spontaneous.rs`. The forms are the demo's
//! (`seed_demo_forms`), so the demo's own forms are what is checked.

use crate::common::app;
use crate::common::backoffice;
use crate::common::browser;
use crate::common::page_check;
use crate::common::pay_world;

use app::gpd::{ENTE, OTHER_ENTE};
use browser::{Browser, Screen};
use chrono::Utc;
use incasso_core::accertamento::{Accertamento, AccertamentoRef};
use incasso_core::catalogue::Service;
use incasso_core::ente::Office;
use incasso_testkit::Backend;
use page_check::{Screens, check_page};
use pay_world::World;

/// What Chromium logs by itself for a page answered 4xx (a refused form
/// comes back with 400, as it should).
const REFUSED: &[&str] = &["the server responded with a status of 4"];

/// The demo's catalogue pieces the demo's forms need, then the forms.
async fn demo_forms(w: &World) {
    let store = &w.app.store;
    store
        .put_office(
            ENTE,
            &Office {
                code: "ANAG".into(),
                name: "Servizi demografici".into(),
                email: None,
            },
        )
        .await
        .unwrap();
    for (ente, code) in [(ENTE, "ACC-ANAG"), (OTHER_ENTE, "ACC-TICKET")] {
        store
            .put_accertamento(
                ente,
                &Accertamento {
                    year: 2026,
                    code: code.into(),
                    description: "Diritti".into(),
                    chapter: "3050".into(),
                    article: None,
                    siope_code: None,
                    active: true,
                },
            )
            .await
            .unwrap();
    }
    store
        .put_service(
            OTHER_ENTE,
            &Service {
                code: "TICKET".into(),
                name: "Ticket sanitario".into(),
                office_code: None,
                taxonomy_code: "9/0501100TS/".into(),
                default_accertamento: Some(AccertamentoRef {
                    year: 2026,
                    code: "ACC-TICKET".into(),
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
    for ente in [ENTE, OTHER_ENTE] {
        incasso_app::portal::spontaneous::seed_demo_forms(store, ente, Utc::now())
            .await
            .unwrap();
    }
}

/// Sends the form with Enter from its last text field and waits for the
/// answer.
async fn send(b: &Browser, from: &str) {
    b.find(from).await;
    b.execute(
        "document.querySelector(arguments[0]).focus(); window.__sent = true",
        vec![from.into()],
    )
    .await;
    b.press(&browser::ENTER.to_string()).await;
    b.wait_for(
        "the answer",
        "!window.__sent && document.readyState === 'complete'",
    )
    .await;
}

/// Activates a link or button by keyboard (focus, Enter) and waits for
/// the next page.
async fn click_and_wait(b: &Browser, css: &str) {
    b.find(css).await;
    b.execute(
        "document.querySelector(arguments[0]).focus(); window.__sent = true",
        vec![css.into()],
    )
    .await;
    b.press(&browser::ENTER.to_string()).await;
    b.wait_for(
        "the next page",
        "!window.__sent && document.readyState === 'complete'",
    )
    .await;
}

async fn type_into(b: &Browser, css: &str, text: &str) {
    let e = b.find(css).await;
    b.execute(
        "document.querySelector(arguments[0]).value = ''",
        vec![css.into()],
    )
    .await;
    b.send_keys(&e, text).await;
}

async fn walk(w: &World, b: Browser, label: &'static str) {
    let base = w.base().to_string();
    let mut screens = Screens::new(label);
    eprintln!("{label}: screenshots in {}", screens.dir.display());

    // The list, and the Comune's form (a choice, a pattern, a table).
    b.goto(&format!("{base}/portale/{ENTE}/servizi")).await;
    b.find("[data-service='DIRITTI-SEG']").await;
    check_page(&b, &mut screens, "servizi", &[]).await;
    click_and_wait(&b, "[data-service='DIRITTI-SEG'] a").await;
    b.find("#f-documento").await;
    check_page(&b, &mut screens, "modulo-vuoto", &[]).await;

    // Sent empty: every required field marked and listed at the top.
    send(&b, "#f-email").await;
    for id in [
        "f-documento",
        "f-pratica",
        "f-debtor_fiscal_code",
        "f-debtor_name",
    ] {
        b.find(&format!("#{id}[aria-invalid='true']")).await;
        b.find(&format!("#errori a[href='#{id}']")).await;
    }
    b.find("#f-amount-errore").await;
    check_page(&b, &mut screens, "modulo-errori", REFUSED).await;

    // Filled in by keyboard (the choice by its first letters).
    let select = b.find("#f-documento").await;
    b.send_keys(&select, "Certificato di stato").await;
    type_into(&b, "#f-pratica", "ab12").await;
    type_into(&b, "#f-debtor_fiscal_code", "RSSMRA85T10A562S").await;
    type_into(&b, "#f-debtor_name", "Mario Rossi").await;
    type_into(&b, "#f-email", "mario.rossi@example.it").await;
    // The urgent rate, by keyboard: focus the radio and press Space.
    b.execute("document.getElementById('f-amount-1').focus()", vec![])
        .await;
    b.press(" ").await;
    send(&b, "#f-email").await;
    // The pattern refuses 'ab12': the one error left, by its field.
    b.find("#f-pratica[aria-invalid='true']").await;
    assert!(
        b.try_find("#f-debtor_name[aria-invalid='true']")
            .await
            .is_none()
    );
    check_page(&b, &mut screens, "modulo-un-errore", REFUSED).await;
    type_into(&b, "#f-pratica", "AB1234").await;
    send(&b, "#f-pratica").await;

    // The summary, then 'Modifica' keeps the answers.
    b.find("#riepilogo").await;
    let source = b.source().await;
    assert!(source.contains("32,00 € (Rilascio urgente)"), "{source}");
    assert!(source.contains("Certificato di stato di famiglia - pratica AB1234"));
    check_page(&b, &mut screens, "riepilogo", &[]).await;
    click_and_wait(&b, "#modifica").await;
    let kept = b
        .execute("return document.getElementById('f-pratica').value", vec![])
        .await;
    assert_eq!(kept, "AB1234");
    let checked = b
        .execute(
            "return document.getElementById('f-amount-1').checked",
            vec![],
        )
        .await;
    assert_eq!(checked, true);
    check_page(&b, &mut screens, "modulo-modifica", &[]).await;
    send(&b, "#f-pratica").await;
    b.find("#riepilogo").await;

    // Confirmed: on pagoPA Checkout (the simulator's page).
    click_and_wait(&b, "#conferma").await;
    let url = b.current_url().await;
    assert!(url.starts_with(&w.sim_url), "{url}");

    // The ASL's form: an amount typed out of bounds.
    b.goto(&format!("{base}/portale/{OTHER_ENTE}/servizi/TICKET"))
        .await;
    type_into(&b, "#f-ricetta", "123456789012345").await;
    type_into(&b, "#f-debtor_fiscal_code", "RSSMRA85T10A562S").await;
    type_into(&b, "#f-debtor_name", "Mario Rossi").await;
    type_into(&b, "#f-amount", "600").await;
    send(&b, "#f-amount").await;
    b.find("#f-amount[aria-invalid='true']").await;
    let described = b
        .execute(
            "return document.getElementById('f-amount').getAttribute('aria-describedby')",
            vec![],
        )
        .await;
    assert_eq!(described, "f-amount-aiuto f-amount-errore");
    check_page(&b, &mut screens, "ticket-importo-errato", REFUSED).await;
    type_into(&b, "#f-amount", "12,50").await;
    send(&b, "#f-amount").await;
    b.find("#riepilogo").await;
    assert!(b.source().await.contains("12,50 €"));
    check_page(&b, &mut screens, "ticket-riepilogo", &[]).await;
    b.quit().await;
}

/// The back office's editor of the Comune's form, signed in as its
/// administrator: as saved, refused with errors by their inputs, with a
/// field block added.
async fn editor(w: &World, b: Browser, label: &'static str) {
    let base = w.base().to_string();
    let mut screens = Screens::new(label);
    b.goto(&format!("{base}/backoffice/login")).await;
    let user = b.find("#username").await;
    b.send_keys(&user, "admin.a").await;
    let password = b.find("#password").await;
    b.send_keys(&password, backoffice::PASSWORD).await;
    send(&b, "#password").await;
    b.goto(&format!("{base}/backoffice/servizi/DIRITTI-SEG/modulo"))
        .await;
    b.find("#c0-name").await;
    check_page(&b, &mut screens, "editor", &[]).await;
    // A repeated name and bounds out of order: refused by their inputs.
    type_into(&b, "#c1-name", "documento").await;
    type_into(&b, "#causale", "Diritti {nessuno}").await;
    click_and_wait(&b, "#salva").await;
    b.find("#c1-name[aria-invalid='true']").await;
    b.find("#causale-errore").await;
    b.find("#errori a[href='#c1-name']").await;
    check_page(&b, &mut screens, "editor-errori", REFUSED).await;
    click_and_wait(&b, "#aggiungi-campo").await;
    b.find("#c2-name").await;
    check_page(&b, &mut screens, "editor-campo-aggiunto", &[]).await;
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_form_editor_passes_axe_on_a_desktop_and_a_phone() {
    let Some(desktop) = Browser::start(Screen::Desktop(1280, 900)).await else {
        return;
    };
    let w = pay_world::world(Backend::Sqlite).await;
    demo_forms(&w).await;
    backoffice::clerk(
        &w.app.store,
        w.base(),
        "admin.a",
        backoffice::rights(incasso_core::access::Role::EnteAdmin, Some(ENTE), &[], &[]),
    )
    .await;
    editor(&w, desktop, "editor-desktop").await;
    let phone = Browser::start(Screen::Phone(375, 812))
        .await
        .expect("the phone's browser");
    editor(&w, phone, "editor-phone").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paying_a_service_passes_axe_on_a_desktop_and_a_phone() {
    let Some(desktop) = Browser::start(Screen::Desktop(1280, 900)).await else {
        return;
    };
    let w = pay_world::world(Backend::Sqlite).await;
    demo_forms(&w).await;
    walk(&w, desktop, "servizi-desktop").await;
    let phone = Browser::start(Screen::Phone(375, 812))
        .await
        .expect("the phone's browser");
    walk(&w, phone, "servizi-phone").await;
}
