//! The personal area and the back office's portal page in a real browser
//! (issue 17): a citizen signs in with the simulator's SPID/CIE test
//! identity from an Ente's portal, reads what they owe at both Enti and
//! what they paid (in Italian and in German), puts a notice in the cart,
//! and signs out; the intermediary's page of its Enti; an administrator
//! sets the portal's colour in the back office, with a low-contrast colour
//! refused next to the field. Each page at a desktop's width (1280 px) and
//! a phone's (375 px): axe-core finds no WCAG 2.1 A/AA violation, the
//! console holds no unexpected error, nothing overflows sideways.

use crate::common::app;
use crate::common::backoffice;
use crate::common::browser;
use crate::common::page_check;
use crate::common::portal_citizen_world as world;

use app::gpd::{ENTE, OTHER_ENTE};
use browser::{Browser, Screen};
use chrono::Utc;
use incasso_core::access::Role;
use incasso_store::PortalSettingsRecord;
use incasso_testkit::Backend;
use page_check::{Screens, check_page};
use world::{ANNA, MARIO};

/// Signs Mario in from `ente`'s portal by clicking, as a person does: the
/// header's link, the provider's page, its "Entra".
async fn sign_in(b: &Browser, base: &str, ente: &str) {
    b.goto(&format!("{base}/portale/{ente}/")).await;
    let login = b.find("[data-element='personal-area-login']").await;
    b.click(&login).await;
    b.wait_for(
        "the provider's page",
        "location.pathname === '/authorize' && document.readyState === 'complete'",
    )
    .await;
    let mario = b.find(&format!("input[value='{}']", MARIO.0)).await;
    b.click(&mario).await;
    let enter = b.find("button[value='entra']").await;
    b.click(&enter).await;
    b.wait_for(
        "the personal area",
        "location.pathname.endsWith('/area-personale') && document.readyState === 'complete'",
    )
    .await;
}

/// Focuses the element of `css` and presses Enter on it: what a keyboard
/// does, and never hidden under another element on a small screen.
async fn activate(b: &Browser, css: &str) {
    b.execute(
        "const e = document.querySelector(arguments[0]); e.scrollIntoView({block: 'center'}); e.focus();",
        vec![serde_json::json!(css)],
    )
    .await;
    b.press(&browser::ENTER.to_string()).await;
}

async fn citizen_pass(b: &Browser, w: &world::World, screens: &mut Screens, size: &str) {
    let base = &w.base;
    sign_in(b, base, ENTE).await;
    let html = b.source().await;
    assert!(html.contains("Mario Rossi"), "signed in");
    check_page(b, screens, &format!("{size}-area"), &[]).await;
    // What axe leaves to review (the states' badges on the cards, the
    // message over the alert's icon), measured.
    for badge in [".badge.bg-primary", ".badge.bg-success"] {
        let ratio = b.contrast(badge).await;
        assert!(ratio >= 4.5, "{badge}: {ratio:.2}:1");
    }
    // Ente B's portal: the same bacheca, in German.
    b.goto(&format!(
        "{base}/portale/{OTHER_ENTE}/area-personale?lingua=de"
    ))
    .await;
    assert!(b.source().await.contains("Persönlicher Bereich"));
    check_page(b, screens, &format!("{size}-area-de"), &[]).await;
    // Italian again, and a notice to the cart by its button.
    b.goto(&format!("{base}/portale/{ENTE}/area-personale?lingua=it"))
        .await;
    activate(
        b,
        "form[action$='/area-personale/paga'] button[type='submit']",
    )
    .await;
    b.wait_for(
        "the cart",
        "location.pathname.endsWith('/carrello') && document.readyState === 'complete'",
    )
    .await;
    // Sign-out from the header.
    b.goto(&format!("{base}/portale/{ENTE}/area-personale"))
        .await;
    activate(b, "form[action$='/esci'] button[type='submit']").await;
    b.wait_for(
        "the sign-out page",
        "location.pathname.endsWith('/uscita') && document.readyState === 'complete'",
    )
    .await;
    check_page(b, screens, &format!("{size}-signed-out"), &[]).await;
    let ratio = b.contrast("#messaggio p").await;
    assert!(ratio >= 4.5, "the message: {ratio:.2}:1");
    b.goto(&format!("{base}/portale/")).await;
    check_page(b, screens, &format!("{size}-enti"), &[]).await;
}

async fn back_office_pass(b: &Browser, base: &str, screens: &mut Screens, size: &str) {
    b.goto(&format!("{base}/backoffice/login")).await;
    let user = b.find("#username").await;
    b.send_keys(&user, "admin.portale").await;
    let password = b.find("#password").await;
    b.send_keys(&password, backoffice::PASSWORD).await;
    let submit = b.find("main form button[type='submit']").await;
    b.click(&submit).await;
    b.wait_for(
        "the dashboard",
        "location.pathname === '/backoffice/' && document.readyState === 'complete'",
    )
    .await;
    b.goto(&format!("{base}/backoffice/portale")).await;
    check_page(b, screens, &format!("{size}-backoffice-portal"), &[]).await;
    // A colour too light for white text: the form comes back with the
    // error next to the field (the 400 is the console's one error).
    let colour = b.find("#colore").await;
    b.execute("document.getElementById('colore').value = ''", vec![])
        .await;
    // Enter in the field sends the form, as the keyboard does.
    b.send_keys(&colour, &format!("#ffcc00{}", browser::ENTER))
        .await;
    b.wait_for(
        "the refused form",
        "document.getElementById('colore-errore') !== null && document.readyState === 'complete'",
    )
    .await;
    check_page(
        b,
        screens,
        &format!("{size}-backoffice-portal-error"),
        &["400"],
    )
    .await;
    b.delete_cookies().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_personal_area_and_the_portal_page_pass_axe_on_a_desktop_and_a_phone() {
    let Some(desktop) = Browser::start(Screen::Desktop(1280, 900)).await else {
        return;
    };
    let w = world::world(Backend::Sqlite).await;
    w.store
        .put_portal_settings(
            OTHER_ENTE,
            &PortalSettingsRecord {
                brand_colour: "#1f5130".into(),
                languages: vec!["de".into()],
            },
            Utc::now(),
        )
        .await
        .unwrap();
    // Mario owes at both Enti (a plan of three installments among them)
    // and paid one; Anna owes too, and is never shown.
    w.position(ENTE, "MARIO-TARI", MARIO, 24_600, 3, false)
        .await;
    w.position(ENTE, "MARIO-MENSA", MARIO, 8_540, 0, false)
        .await;
    let ticket = w
        .position(OTHER_ENTE, "MARIO-TICKET", MARIO, 3_650, 0, false)
        .await;
    w.position(OTHER_ENTE, "MARIO-VISITA", MARIO, 2_500, 0, false)
        .await;
    w.position(ENTE, "ANNA-TARI", ANNA, 45_600, 0, false).await;
    w.pay(OTHER_ENTE, &ticket.navs[0]).await;
    backoffice::clerk(
        &w.store,
        &w.base,
        "admin.portale",
        backoffice::rights(Role::EnteAdmin, Some(ENTE), &[], &[]),
    )
    .await;

    let mut screens = Screens::new("portal-citizen");
    eprintln!("screenshots in {}", screens.dir.display());
    citizen_pass(&desktop, &w, &mut screens, "desktop").await;
    back_office_pass(&desktop, &w.base, &mut screens, "desktop").await;
    desktop.quit().await;

    let Some(phone) = Browser::start(Screen::Phone(375, 740)).await else {
        return;
    };
    citizen_pass(&phone, &w, &mut screens, "phone").await;
    back_office_pass(&phone, &w.base, &mut screens, "phone").await;
    phone.quit().await;
}
