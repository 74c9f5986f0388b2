//! The desk's card terminal in a real browser (issue 18), by keyboard
//! alone, at a desktop's size and at a phone's: a counter clerk finds the
//! person's notices by fiscal code, presses Enter with nothing chosen (the
//! reason by the button, the focus on it), chooses two notices with the
//! space bar, sends them to the terminal and watches the page follow the
//! payment until it is paid; then fills a service's form and, from the
//! summary, has the position created and paid at the terminal.
//!
//! On every page and state axe-core finds no WCAG 2.1 A/AA violation, the
//! console holds no error and nothing overflows sideways; screenshots go
//! to the folder printed. SQLite only, as the other browser tests: the
//! data paths run on both databases in `backoffice_desk_pos.rs`.

use crate::common::backoffice;
use crate::common::browser;
use crate::common::desk_pos_world;
use crate::common::desk_world;
use crate::common::page_check;

use backoffice::{PASSWORD, clerk, rights};
use browser::{Browser, ENTER, Screen, TAB};
use desk_pos_world::desk_pos_world;
use desk_world::{DEBTOR, DESK};
use incasso_core::access::Role;
use incasso_testkit::Backend;
use page_check::{Screens, check_page};

const PAID: &str = "document.querySelector('#stato-pos') !== null \
    && document.querySelector('#stato-pos').innerText.includes('Pagato')";

/// Opens the desk and searches the debtor's notices by keyboard.
async fn search_the_debtor(browser: &Browser, base: &str) {
    browser
        .goto(&format!("{base}/backoffice/sportello/{DESK}"))
        .await;
    browser.tab_to("codice-fiscale", 8).await;
    browser.type_text(DEBTOR).await;
    browser.press(&ENTER.to_string()).await;
    browser
        .wait_for_element("the notices found", "#risultati")
        .await;
}

async fn run(screen: Screen, label: &'static str) {
    let Some(browser) = Browser::start(screen).await else {
        return;
    };
    let w = desk_pos_world(Backend::Sqlite).await;
    let single =
        super::backoffice_desk_pos::open_position(&w.store, "DESK-A", DEBTOR, 1_200, 10, 0).await;
    let plan =
        super::backoffice_desk_pos::open_position(&w.store, "DESK-B", DEBTOR, 5_000, 20, 2).await;
    let base = w.base.clone();
    clerk(
        &w.store,
        &base,
        "lucia.sportello",
        rights(
            Role::CounterClerk,
            Some(desk_pos_world::ENTE),
            &[],
            &["ANAG"],
        ),
    )
    .await;
    let mut screens = Screens::new(label);
    eprintln!("{label}: screenshots in {}", screens.dir.display());

    // Sign in by keyboard, then the desk.
    browser
        .sign_in_by_keyboard(&base, "lucia.sportello", PASSWORD)
        .await;

    // The person's notices, each with its checkbox.
    search_the_debtor(&browser, &base).await;
    browser.focus_is("scegli-1", "found").await;
    check_page(&browser, &mut screens, "found", &[]).await;

    // Sent with nothing chosen: the reason by the button, with the focus.
    browser.tab_to("invia-scelti", 20).await;
    browser.press(&ENTER.to_string()).await;
    browser
        .wait_for_element("the refusal", "#pos-scelta-errore")
        .await;
    browser
        .focus_is("pos-scelta-errore", "nothing chosen")
        .await;
    check_page(&browser, &mut screens, "nothing-chosen", &["status of 400"]).await;

    // Two notices chosen with the space bar, sent to the terminal.
    let boxes = browser.find_all("input[name=avviso]").await;
    let mut wanted = Vec::new();
    for (i, b) in boxes.iter().enumerate() {
        let value = browser.property(b, "value").await;
        let value = value.as_str().unwrap_or_default();
        if value.starts_with(&single[0]) || value.starts_with(&plan[1]) {
            wanted.push(format!("scegli-{}", i + 1));
        }
    }
    assert_eq!(wanted.len(), 2, "{label}: the two notices offered");
    search_the_debtor(&browser, &base).await;
    for id in &wanted {
        browser.tab_to(id, 20).await;
        browser.press(" ").await;
        let checked = browser
            .property(&browser.active_element().await, "checked")
            .await;
        assert_eq!(checked, serde_json::json!(true), "{label}: #{id} chosen");
    }
    check_page(&browser, &mut screens, "chosen", &[]).await;
    browser.tab_to("invia-scelti", 20).await;
    browser.press(&ENTER.to_string()).await;
    browser
        .wait_path(
            "the terminal's page",
            &format!("/backoffice/sportello/{DESK}/pos/"),
        )
        .await;
    browser.focus_is("torna-sportello", "terminal").await;
    check_page(&browser, &mut screens, "terminal-open", &[]).await;
    browser.wait_for("the payment done", PAID).await;
    let status = browser.text(&browser.find("#stato-pos").await).await;
    assert!(status.contains("37,00 €"), "{label}: {status}");
    check_page(&browser, &mut screens, "terminal-paid", &[]).await;

    // Back at the desk: a service's form, paid at once at the terminal.
    browser.press(&ENTER.to_string()).await;
    browser
        .wait_path("the desk", &format!("/backoffice/sportello/{DESK}"))
        .await;
    browser.press(&ENTER.to_string()).await;
    browser
        .wait_path(
            "the form",
            &format!("/backoffice/sportello/{DESK}/servizi/"),
        )
        .await;
    browser.focus_is("f-debtor_fiscal_code", "form").await;
    for (i, text) in [DEBTOR, "Mario Rossi", "", "AB1234"].iter().enumerate() {
        if i > 0 {
            browser.press(&TAB.to_string()).await;
        }
        if !text.is_empty() {
            browser.type_text(text).await;
        }
    }
    browser.tab_to("avanti", 4).await;
    browser.press(&ENTER.to_string()).await;
    browser.wait_for_element("the summary", "#riepilogo").await;
    browser.focus_is("emetti", "summary").await;
    check_page(&browser, &mut screens, "summary-terminal", &[]).await;
    browser.tab_to("iuv-ente", 10).await;
    browser.tab_to("crea-al-terminale", 4).await;
    browser.press(&ENTER.to_string()).await;
    browser
        .wait_path(
            "the terminal's page",
            &format!("/backoffice/sportello/{DESK}/pos/SD-"),
        )
        .await;
    browser.wait_for("the payment done", PAID).await;
    let status = browser.text(&browser.find("#stato-pos").await).await;
    assert!(status.contains("16,00 €"), "{label}: {status}");
    check_page(&browser, &mut screens, "created-paid", &[]).await;
    browser.quit().await;
}

/// One browser at a time (each is a Chromium of its own): the desktop,
/// then the phone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_desk_terminal_by_keyboard_on_a_desktop_and_a_phone() {
    run(Screen::Desktop(1280, 900), "desk-pos-desktop").await;
    run(Screen::Phone(390, 844), "desk-pos-phone").await;
}
