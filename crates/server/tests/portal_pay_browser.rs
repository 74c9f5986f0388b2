//! Paying notices on the portal in a real browser (issue 17): headless
//! Chromium on a desktop (1280 px) and a phone (375 px) goes through every
//! page and state of the procedure: the empty form, a malformed number, a
//! paid notice, the notice, the notice added, the cart, a wrong email,
//! pagoPA Checkout (the simulator's) paid and cancelled, the outcome, the
//! empty cart and a tampered outcome link. On each of the portal's pages
//! axe-core finds no WCAG 2.1 A/AA violation, the console holds no error
//! and nothing overflows sideways; screenshots go to the folder printed.
//!
//! SQLite only, as the back office's browser tests: the data paths run on
//! both databases in `portal_pay.rs`.

use crate::common::app;
use crate::common::browser;
use crate::common::page_check;
use crate::common::pay_world;

use app::gpd::{ENTE, OTHER_ENTE};
use browser::{Browser, Screen};
use incasso_testkit::Backend;
use page_check::{Screens, check_page};
use pay_world::World;

/// What Chromium logs by itself for a page answered 4xx (a refused form
/// comes back with 400, 404 or 409, as it should).
const REFUSED: &[&str] = &["the server responded with a status of 4"];

/// Clicks `css` (scrolled to at once: Bootstrap's smooth scrolling would
/// leave it where WebDriver's click misses it; and nothing may cover it)
/// and waits for the next page (its path starting with
/// `path`, or any URL starting with it).
async fn click_to(b: &Browser, css: &str, path: &str) {
    let e = b.find(css).await;
    let over = b
        .execute(
            "const e = document.querySelector(arguments[0]); e.scrollIntoView({block: 'center', behavior: 'instant'}); \
             const r = e.getBoundingClientRect(); \
             const o = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2); \
             return o === e || e.contains(o) ? '' : (o ? o.outerHTML.slice(0, 300) : 'nothing');",
            vec![css.into()],
        )
        .await;
    assert_eq!(over, "", "{css} is covered");
    // The next page may have the same path (a form posted to itself):
    // it is the one without this mark.
    b.execute("window.incassoOldPage = true", vec![]).await;
    b.click(&e).await;
    b.wait_for(
        &format!("{path} after {css}"),
        &format!(
            "!window.incassoOldPage \
             && (location.pathname.startsWith('{path}') || location.href.startsWith('{path}')) \
             && document.readyState === 'complete'"
        ),
    )
    .await;
}

/// Types `code` in the notice form and sends it.
async fn look_up(b: &Browser, base: &str, code: &str) {
    b.goto(&format!("{base}/portale/{ENTE}/avviso")).await;
    let field = b.find("#codice").await;
    b.send_keys(&field, code).await;
    click_to(
        b,
        "#cerca-avviso button[type=submit]",
        &format!("/portale/{ENTE}/avviso"),
    )
    .await;
}

async fn walk(w: &World, b: Browser, label: &'static str, tag: &str) {
    let base = w.base().to_string();
    let mut screens = Screens::new(label);
    eprintln!("{label}: screenshots in {}", screens.dir.display());
    let first = w.notice(ENTE, &format!("{tag}-1"), 12_345, 20).await;
    let second = w.notice(OTHER_ENTE, &format!("{tag}-2"), 6_780, 25).await;
    let paid = w.notice(ENTE, &format!("{tag}-P"), 1_000, 20).await;
    w.sim.pay(ENTE, &paid.nav).await.unwrap();

    // The empty form (the QR button stays hidden: no camera here).
    b.goto(&format!("{base}/portale/{ENTE}/avviso")).await;
    check_page(&b, &mut screens, "avviso-vuoto", &[]).await;
    // A malformed number, then a paid notice: the reason by the field.
    look_up(&b, &base, "3010 0000").await;
    b.find("#codice.is-invalid").await;
    check_page(&b, &mut screens, "avviso-errato", REFUSED).await;
    look_up(&b, &base, &paid.nav).await;
    let source = b.source().await;
    assert!(source.contains("già pagato"), "{label}: {source}");
    check_page(&b, &mut screens, "avviso-pagato", REFUSED).await;

    // The notice, then added to the cart.
    look_up(&b, &base, &first.nav).await;
    b.find("#avviso[data-status=PAYABLE]").await;
    assert!(!b.source().await.contains(&first.debtor_name));
    check_page(&b, &mut screens, "avviso", &[]).await;
    click_to(&b, "#aggiungi", &format!("/portale/{ENTE}/avviso")).await;
    b.find("#aggiunto").await;
    check_page(&b, &mut screens, "avviso-aggiunto", &[]).await;

    // Ente B's notice, chosen in the select, paid now: the summary.
    b.goto(&format!("{base}/portale/{ENTE}/avviso")).await;
    b.execute(
        "document.getElementById('ente').value = arguments[0]",
        vec![OTHER_ENTE.into()],
    )
    .await;
    let field = b.find("#codice").await;
    b.send_keys(&field, &second.nav).await;
    click_to(
        &b,
        "#cerca-avviso button[type=submit]",
        &format!("/portale/{ENTE}/avviso"),
    )
    .await;
    click_to(&b, "#paga-ora", &format!("/portale/{ENTE}/carrello")).await;
    assert_eq!(b.find_all(".portal-cart-item").await.len(), 2);
    check_page(&b, &mut screens, "carrello", &[]).await;
    // A wrong email, then a right one: off to Checkout.
    let email = b.find("#email").await;
    b.send_keys(&email, "mario.rossi@").await;
    click_to(&b, "#conferma", &format!("/portale/{ENTE}/carrello")).await;
    b.find("#email.is-invalid").await;
    check_page(&b, &mut screens, "carrello-email-errata", REFUSED).await;
    b.execute("document.getElementById('email').value = ''", vec![])
        .await;
    let email = b.find("#email").await;
    b.send_keys(&email, "mario.rossi@example.it").await;
    click_to(&b, "#conferma", &w.sim_url).await;
    screens.save(&b, "checkout").await;
    // Cancelled there: the plain message, the notices still in the cart.
    click_to(&b, "#cancel", &format!("/portale/{ENTE}/carrello/esito")).await;
    b.find("#esito[data-status=CANCELLED]").await;
    check_page(&b, &mut screens, "esito-annullato", &[]).await;
    // Paid the second time.
    b.goto(&format!("{base}/portale/{ENTE}/carrello")).await;
    click_to(&b, "#conferma", &w.sim_url).await;
    click_to(&b, "#pay", &format!("/portale/{ENTE}/carrello/esito")).await;
    b.find("#esito[data-status=PAID]").await;
    check_page(&b, &mut screens, "esito-pagato", &[]).await;

    // The cart, empty now; a tampered outcome link.
    b.goto(&format!("{base}/portale/{ENTE}/carrello")).await;
    b.find("#carrello-vuoto").await;
    check_page(&b, &mut screens, "carrello-vuoto", &[]).await;
    b.goto(&format!(
        "{base}/portale/{ENTE}/carrello/esito/ok?c=0123456789abcdef0123456789abcdef"
    ))
    .await;
    assert!(b.source().await.contains("Non risulta nessun pagamento"));
    check_page(&b, &mut screens, "esito-alterato", REFUSED).await;
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paying_notices_passes_axe_on_a_desktop_and_a_phone() {
    let Some(desktop) = Browser::start(Screen::Desktop(1280, 900)).await else {
        return;
    };
    // A world each: the two browsers are one client (127.0.0.1) to the
    // portal's rate limits, which a whole payment twice would pass.
    let w = pay_world::world(Backend::Sqlite).await;
    walk(&w, desktop, "desktop", "D").await;
    let phone = Browser::start(Screen::Phone(375, 812))
        .await
        .expect("the phone's browser");
    let w = pay_world::world(Backend::Sqlite).await;
    walk(&w, phone, "phone", "M").await;
}
