//! Finding a receipt on the portal in a real browser (issue 17): headless
//! Chromium on a desktop (1280 px) and a phone (375 px), driven by the
//! keyboard alone, goes through every state of the search: the empty
//! form, both fields malformed, a receipt that is not there, the receipt
//! found, its PDF downloaded. On each page axe-core finds no WCAG 2.1
//! A/AA violation, the console holds no error and nothing overflows
//! sideways; screenshots go to the folder printed.
//!
//! SQLite only, as the other browser tests: the data paths run on both
//! databases in `portal_receipts.rs`.

use crate::common::app;
use crate::common::browser;
use crate::common::page_check;
use crate::common::portal_receipts_world as world;

use app::gpd::ENTE;
use browser::{Browser, Screen};
use incasso_testkit::Backend;
use page_check::{Screens, check_page};
use world::World;

/// What Chromium logs by itself for a page answered 4xx (a refused form
/// comes back with 400 or 404, as it should).
const REFUSED: &[&str] = &["the server responded with a status of 4"];

/// Fills the form by keyboard (Tab from the IUV field to the fiscal code,
/// Enter to send) and waits for the answer.
async fn search(b: &Browser, base: &str, iuv: &str, fc: &str) {
    b.goto(&format!("{base}/portale/{ENTE}/ricevuta")).await;
    let field = b.find("#iuv").await;
    b.click(&field).await;
    b.send_keys(&field, iuv).await;
    b.press(&browser::TAB.to_string()).await;
    let focused = b.execute("return document.activeElement.id", vec![]).await;
    assert_eq!(focused, "codice_fiscale", "Tab leads to the fiscal code");
    let fc_field = b.find("#codice_fiscale").await;
    b.send_keys(&fc_field, fc).await;
    b.execute("window.__sent = true", vec![]).await;
    b.press(&browser::ENTER.to_string()).await;
    b.wait_for(
        "the answer",
        "!window.__sent && document.readyState === 'complete'",
    )
    .await;
}

async fn walk(w: &World, b: Browser, label: &'static str, tag: &str) {
    let base = w.base.clone();
    let mut screens = Screens::new(label);
    eprintln!("{label}: screenshots in {}", screens.dir.display());
    let n = w.notice(ENTE, &format!("{tag}-R"), 4_250).await;
    w.sim.pay(ENTE, &n.nav).await.unwrap();
    w.receipt_id(ENTE, &n.nav).await;

    b.goto(&format!("{base}/portale/{ENTE}/ricevuta")).await;
    check_page(&b, &mut screens, "ricevuta-vuoto", &[]).await;

    search(&b, &base, "123", "XYZ").await;
    b.find("#iuv.is-invalid").await;
    b.find("#codice_fiscale.is-invalid").await;
    b.find("#errori a[href='#iuv']").await;
    check_page(&b, &mut screens, "ricevuta-errori", REFUSED).await;

    search(&b, &base, &n.iuv, "RSSMRA80A01H501U").await;
    b.find("#non-trovata").await;
    check_page(&b, &mut screens, "ricevuta-non-trovata", REFUSED).await;

    search(&b, &base, &n.iuv, &n.debtor_fc).await;
    b.find("#ricevuta").await;
    assert!(b.source().await.contains("42,50 €"));
    check_page(&b, &mut screens, "ricevuta-trovata", &[]).await;
    // The download button is reachable by keyboard and answers a PDF.
    let focused = b
        .execute(
            "const e = document.getElementById('scarica'); e.focus(); return document.activeElement.id",
            vec![],
        )
        .await;
    assert_eq!(focused, "scarica");
    let status = b
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const f = document.getElementById('scarica').form;
             fetch(f.action, {method: 'POST', body: new URLSearchParams(new FormData(f))})
               .then(r => done(r.status + ' ' + r.headers.get('content-type')));",
            vec![],
        )
        .await;
    assert_eq!(status, "200 application/pdf");
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_a_receipt_passes_axe_on_a_desktop_and_a_phone() {
    let Some(desktop) = Browser::start(Screen::Desktop(1280, 900)).await else {
        return;
    };
    let w = world::world(Backend::Sqlite).await;
    walk(&w, desktop, "ricevute-desktop", "D").await;
    let phone = Browser::start(Screen::Phone(375, 812))
        .await
        .expect("the phone's browser");
    walk(&w, phone, "ricevute-phone", "M").await;
}
