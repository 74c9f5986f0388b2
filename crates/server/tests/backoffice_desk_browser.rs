//! The Sportello Digitale in a real browser (issue 18), by keyboard alone:
//! headless Chromium at a desktop's size and at a phone's signs in a
//! counter clerk, opens the desk from the home page, chooses the service,
//! sends the empty form (every error listed, the focus on the list), tabs
//! to each field in the reading order and fills it, reviews the summary,
//! issues (the focus on *Emetti*), prints the notice and the avviso PA
//! (their links, fetched with the browser's session, are PDFs), types a
//! wrong e-mail address (its error next to it), finds the person's open
//! positions by fiscal code, and closes the day. No mouse: only Tab,
//! Enter and typed text, each step's first field having the focus.
//!
//! On every page and state axe-core finds no WCAG 2.1 A/AA violation, the
//! console holds no error and nothing overflows sideways; screenshots go
//! to the folder printed. SQLite only, as the other browser tests: the
//! data paths run on both databases in `backoffice_desk.rs`.

use crate::common::app;
use crate::common::backoffice;
use crate::common::browser;
use crate::common::desk_world;
use crate::common::page_check;

use app::gpd::ENTE;
use app::spawn_app;
use backoffice::{PASSWORD, clerk, rights};
use browser::{Browser, ENTER, Screen, TAB};
use desk_world::{DEBTOR, DESK, desk_world};
use incasso_core::access::Role;
use incasso_testkit::Backend;
use page_check::{Screens, check_page};

/// Downloads `href` with the browser's session: a PDF.
async fn is_pdf(browser: &Browser, base: &str, href: &str) {
    let cookie = browser.cookie_header().await;
    let url = if href.starts_with("http") {
        href.to_string()
    } else {
        format!("{base}{href}")
    };
    let resp = reqwest::Client::new()
        .get(&url)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{url}");
    let body = resp.bytes().await.unwrap();
    assert!(body.starts_with(b"%PDF-"), "{url} is no PDF");
}

async fn run(screen: Screen, label: &'static str) {
    let Some(browser) = Browser::start(screen).await else {
        return;
    };
    let app = spawn_app(Backend::Sqlite).await;
    desk_world(&app).await;
    let base = app.server.base.clone();
    clerk(
        &app.store,
        &base,
        "lucia.sportello",
        rights(Role::CounterClerk, Some(ENTE), &[], &["ANAG"]),
    )
    .await;
    let mut screens = Screens::new(label);
    eprintln!("{label}: screenshots in {}", screens.dir.display());

    // Sign in by keyboard.
    browser
        .sign_in_by_keyboard(&base, "lucia.sportello", PASSWORD)
        .await;

    // Home: the desk is one Enter away.
    browser.focus_is("apri-sportello", "home").await;
    check_page(&browser, &mut screens, "home", &[]).await;
    browser.press(&ENTER.to_string()).await;
    browser
        .wait_path("the desks", "/backoffice/sportello")
        .await;
    check_page(&browser, &mut screens, "desks", &[]).await;
    let f = browser.focused().await;
    assert!(f.text.contains("Sportello polifunzionale"), "desks: {f}");
    browser.press(&ENTER.to_string()).await;
    browser
        .wait_path("the desk", &format!("/backoffice/sportello/{DESK}"))
        .await;
    check_page(&browser, &mut screens, "desk", &[]).await;
    let f = browser.focused().await;
    assert!(f.text.contains("Diritti di segreteria"), "desk: {f}");

    // The form: empty, then every error listed with the focus on the list.
    browser.press(&ENTER.to_string()).await;
    browser
        .wait_path(
            "the form",
            &format!("/backoffice/sportello/{DESK}/servizi/"),
        )
        .await;
    browser.focus_is("f-debtor_fiscal_code", "form").await;
    check_page(&browser, &mut screens, "form", &[]).await;
    browser.press(&ENTER.to_string()).await;
    browser
        .wait_for(
            "the errors",
            "document.querySelector('#errori') !== null && document.readyState === 'complete'",
        )
        .await;
    let f = browser.focused().await;
    assert_eq!(f.tag, "a", "errors: the focus is on {f}");
    assert!(f.text.contains("Codice fiscale"), "errors: {f}");
    // The form sent back is a 400, which the console notes.
    check_page(&browser, &mut screens, "form-errors", &["status of 400"]).await;

    // Tab to each field in the reading order, and fill it.
    browser.tab_to("f-debtor_fiscal_code", 8).await;
    let order = [
        ("f-debtor_fiscal_code", DEBTOR),
        ("f-debtor_name", "Mario Rossi"),
        ("f-email", "mario.rossi@example.it"),
        ("f-pratica", "AB1234"),
    ];
    for (i, (id, text)) in order.iter().enumerate() {
        if i > 0 {
            browser.press(&TAB.to_string()).await;
        }
        browser.focus_is(id, "form, in order").await;
        let e = browser.active_element().await;
        browser.send_keys(&e, text).await;
    }
    browser.press(&TAB.to_string()).await;
    browser.focus_is("f-amount-0", "form, the amount").await;
    browser.press(&TAB.to_string()).await;
    browser.focus_is("avanti", "form, the button").await;
    browser.press(&ENTER.to_string()).await;

    // The summary: Emetti has the focus.
    browser
        .wait_for(
            "the summary",
            "document.querySelector('#riepilogo') !== null && document.readyState === 'complete'",
        )
        .await;
    browser.focus_is("emetti", "summary").await;
    let summary = browser.text(&browser.find("#riepilogo").await).await;
    assert!(summary.contains("16,00 €"), "{summary}");
    assert!(summary.contains(DEBTOR), "{summary}");
    check_page(&browser, &mut screens, "summary", &[]).await;
    browser.press(&ENTER.to_string()).await;

    // Issued: print the notice, print the avviso PA.
    browser
        .wait_path(
            "the issued position",
            &format!("/backoffice/sportello/{DESK}/emesse/SD-"),
        )
        .await;
    browser.focus_is("stampa-avviso", "issued").await;
    check_page(&browser, &mut screens, "issued", &[]).await;
    let notice = browser.find("#stampa-avviso").await;
    let href = browser.property(&notice, "href").await;
    is_pdf(&browser, &base, href.as_str().unwrap()).await;
    browser.press(&TAB.to_string()).await;
    browser
        .focus_is("stampa-avviso-pa", "issued, the Ente's copy")
        .await;
    let copy = browser.active_element().await;
    let href = browser.property(&copy, "href").await;
    is_pdf(&browser, &base, href.as_str().unwrap()).await;
    let issued_path = browser.current_path().await;

    // A wrong e-mail address: its error next to it.
    browser.press(&TAB.to_string()).await;
    browser.focus_is("email", "issued, the e-mail").await;
    browser.press_ctrl('a').await;
    browser.press("sbagliata").await;
    browser.press(&ENTER.to_string()).await;
    browser
        .wait_for(
            "the e-mail's error",
            "document.querySelector('#email-errore') !== null && document.readyState === 'complete'",
        )
        .await;
    // The form sent back is a 400, which the console notes.
    check_page(
        &browser,
        &mut screens,
        "issued-email-error",
        &["status of 400"],
    )
    .await;

    // The person's open positions, by fiscal code.
    browser
        .goto(&format!("{base}/backoffice/sportello/{DESK}"))
        .await;
    browser.tab_to("codice-fiscale", 6).await;
    let e = browser.active_element().await;
    browser.send_keys(&e, DEBTOR).await;
    browser.press(&ENTER.to_string()).await;
    browser
        .wait_for(
            "the positions found",
            "document.querySelector('#risultati') !== null && document.readyState === 'complete'",
        )
        .await;
    let f = browser.focused().await;
    assert!(f.text.starts_with("Ristampa"), "found: the focus is on {f}");
    let href = browser
        .property(&browser.active_element().await, "href")
        .await;
    is_pdf(&browser, &base, href.as_str().unwrap()).await;
    check_page(&browser, &mut screens, "found", &[]).await;

    // The day: close it by keyboard.
    browser
        .goto(&format!("{base}/backoffice/sportello/{DESK}/giornata"))
        .await;
    browser.focus_is("giorno", "day").await;
    let total = browser.text(&browser.find("#totale-emesso").await).await;
    assert_eq!(total, "16,00 €");
    check_page(&browser, &mut screens, "day", &[]).await;
    browser.tab_to("chiudi", 8).await;
    browser.press(&ENTER.to_string()).await;
    browser
        .wait_for(
            "the closed day",
            "document.querySelector('#chiusa') !== null && document.readyState === 'complete'",
        )
        .await;
    check_page(&browser, &mut screens, "day-closed", &[]).await;

    // The issued page still answers, now without the e-mail's error.
    browser.goto(&format!("{base}{issued_path}")).await;
    browser.focus_is("stampa-avviso", "issued again").await;
    browser.quit().await;
}

/// One browser at a time (each is a Chromium of its own): the desktop,
/// then the phone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_desk_by_keyboard_on_a_desktop_and_a_phone() {
    run(Screen::Desktop(1280, 900), "desk-desktop").await;
    run(Screen::Phone(390, 844), "desk-phone").await;
}
