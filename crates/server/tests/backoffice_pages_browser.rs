//! Every page of the back office in a real browser (issue 16), found by
//! walking it rather than listed: Ente A's administrator (and the
//! intermediary's, for the pages only they have) walks every page
//! reachable from the home page over HTTP, then headless Chromium opens
//! each one at a desktop's size and at a phone's. On each, axe-core finds
//! no WCAG 2.1 A/AA violation, the console holds no error (the strict CSP
//! refusing something would be one), and nothing overflows sideways on
//! the phone. Screenshots of each go to the folder the test prints.
//!
//! SQLite only, as `backoffice_browser.rs` and for its reasons: the pages'
//! data paths run on both databases in the HTTP tests.

use crate::common::app;
use crate::common::backoffice;
use crate::common::bo_world;
use crate::common::browser;
use crate::common::crawl;
use crate::common::page_check;

use app::gpd::ENTE;
use backoffice::{PASSWORD, clerk, rights};
use bo_world::world;
use browser::{Browser, Screen};
use crawl::{is_download, walk};
use incasso_core::access::Role;
use incasso_testkit::Backend;
use page_check::{Screens, check_page};

/// A name for a page's screenshot, from its URL.
fn name_of(url: &str) -> String {
    let name: String = url
        .trim_start_matches("/backoffice/")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    if name.is_empty() {
        "home".into()
    } else {
        name.chars().take(60).collect()
    }
}

async fn sign_in(browser: &Browser, base: &str, username: &str) {
    browser.goto(&format!("{base}/backoffice/login")).await;
    let user = browser.find("#username").await;
    browser.send_keys(&user, username).await;
    let password = browser.find("#password").await;
    browser.send_keys(&password, PASSWORD).await;
    let submit = browser.find("form button[type=submit]").await;
    browser.click(&submit).await;
    browser
        .wait_for(
            "the home page after sign-in",
            "location.pathname === '/backoffice/' && document.readyState === 'complete'",
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_passes_axe_on_a_desktop_and_a_phone() {
    let Some(desktop) = Browser::start(Screen::Desktop(1280, 900)).await else {
        return;
    };
    let w = world(Backend::Sqlite).await;
    let (store, base) = (&w.app.store, w.app.server.base.clone());
    let admin = clerk(
        store,
        &base,
        "admin.a",
        rights(Role::EnteAdmin, Some(ENTE), &[], &[]),
    )
    .await;
    let intermediary = clerk(
        store,
        &base,
        "intermediary",
        rights(Role::IntermediaryAdmin, None, &[], &[]),
    )
    .await;
    // Each page once (not each of its sorts and pages): what differs
    // between them is data, not markup.
    let mut pages: Vec<(String, String)> = Vec::new();
    for (who, c) in [("admin.a", &admin), ("intermediary", &intermediary)] {
        for (url, status) in walk(c, 200, 1).await.pages {
            assert!(status < 500, "{url}: {status}");
            if status == 200 && !is_download(&url) && !pages.iter().any(|(_, u)| *u == url) {
                pages.push((who.to_string(), url));
            }
        }
    }
    eprintln!("{} pages to check", pages.len());
    assert!(pages.len() >= 20, "{pages:?}");
    // The Ente's e-mail texts (issue 19) are among them.
    assert!(
        pages
            .iter()
            .any(|(_, u)| u == "/backoffice/notifiche/email"),
        "{pages:?}"
    );

    let mut phone = Browser::start(Screen::Phone(390, 844)).await;
    for (label, browser) in [("desktop", Some(desktop)), ("phone", phone.take())] {
        let browser = browser.expect("the phone's browser");
        let mut screens = Screens::new(label);
        eprintln!("{label}: screenshots in {}", screens.dir.display());
        let mut signed_in = "";
        for (who, url) in &pages {
            if signed_in != who {
                if !signed_in.is_empty() {
                    browser.delete_cookies().await;
                }
                sign_in(&browser, &base, who).await;
                signed_in = who;
            }
            browser.goto(&format!("{base}{url}")).await;
            let here = browser.current_path().await;
            assert!(
                !here.starts_with("/backoffice/login"),
                "{label}: {url} led to the sign-in page"
            );
            check_page(&browser, &mut screens, &name_of(url), &[]).await;
        }
        browser.quit().await;
    }
}
