//! The Ente administrator's POS terminals and webhooks pages, and the POS
//! anomalies on the desk's day (issue 18), in headless Chromium at a
//! desktop's size and at a phone's, by keyboard alone: an administrator
//! registers a terminal (a wrong id first: its error next to the field,
//! with the focus on it), disables it from its row; registers a webhook
//! endpoint (the secret shown once), opens it and asks to delete it (the
//! confirmation's focus on *Annulla*); on the desk's day finds the POS
//! payment flagged for a person and releases its notices after the
//! confirmation.
//!
//! On every page and state axe-core finds no WCAG 2.1 A/AA violation, the
//! console holds no error and nothing overflows sideways; screenshots go
//! to the folder printed. SQLite only, as the other browser tests: the
//! data paths run on both databases in `backoffice_pos_webhooks.rs`.

use crate::common::app;
use crate::common::backoffice;
use crate::common::browser;
use crate::common::desk_world;
use crate::common::page_check;

use app::gpd::{ENTE, iuv, nav, position};
use app::spawn_app;
use backoffice::{PASSWORD, clerk, rights};
use browser::{Browser, ENTER, Screen, TAB};
use chrono::Utc;
use desk_world::{DESK, desk_world};
use incasso_core::access::Role;
use incasso_store::pos::{self as st, NewPosSession, PosChange};
use incasso_testkit::Backend;
use page_check::{Screens, check_page};
use reqwest::Method;

/// A cancelled position's event to Ente A's one endpoint, given up on (as
/// after three days): its id.
async fn failed_delivery(app: &app::TestApp) -> i64 {
    let iupd = "WH-1";
    let created = app
        .server
        .call(
            Method::POST,
            &format!("/gpd/v1/organizations/{ENTE}/debtpositions?toPublish=true"),
            Some(&app.key_a),
            Some(&position(iupd, &[iuv(1)])),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let cancelled = app
        .server
        .call(
            Method::POST,
            &format!("/gpd/v1/organizations/{ENTE}/debtpositions/{iupd}/invalidate"),
            Some(&app.key_a),
            None,
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    let id = app.store.webhook_endpoints(ENTE).await.unwrap()[0].id;
    let mut tries = 0;
    let delivery = loop {
        if let Some(d) = app
            .store
            .webhook_deliveries(ENTE, id, 10)
            .await
            .unwrap()
            .into_iter()
            .next()
        {
            break d;
        }
        tries += 1;
        assert!(tries < 100, "no delivery");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let later = Utc::now() + chrono::Duration::days(4);
    let claimed = app
        .store
        .claim_due_deliveries(later, chrono::Duration::seconds(60), 10)
        .await
        .unwrap();
    let mine = claimed.iter().find(|c| c.id == delivery.id).unwrap();
    assert!(
        app.store
            .delivery_not_delivered(
                mine.id,
                mine.attempt,
                Some(503),
                "servizio non disponibile",
                None
            )
            .await
            .unwrap()
    );
    delivery.id
}

async fn run(screen: Screen, label: &'static str) {
    let Some(browser) = Browser::start(screen).await else {
        return;
    };
    let app = spawn_app(Backend::Sqlite).await;
    desk_world(&app).await;
    let store = &app.store;
    store
        .pos_register_terminal(
            ENTE,
            "SIMPOS01",
            "POS dello sportello",
            Some(DESK),
            Utc::now(),
        )
        .await
        .unwrap();
    store
        .pos_open_session(
            &NewPosSession {
                id: "S-1".into(),
                ente: ENTE.into(),
                terminal_id: "SIMPOS01".into(),
                desk: DESK.into(),
                operator: "lucia.sportello".into(),
                correlation_id: "corr-1".into(),
                notices: vec![(nav(7), "IUPD-7".into(), 1600)],
            },
            Utc::now(),
        )
        .await
        .unwrap();
    store
        .pos_change(
            "S-1",
            &[st::OPENING],
            &PosChange {
                state: Some(st::AUTHORIZED),
                anomaly: Some("RECEIPT_MISSING".into()),
                ..Default::default()
            },
            Utc::now(),
        )
        .await
        .unwrap();
    let base = app.server.base.clone();
    clerk(
        store,
        &base,
        "ada.admin",
        rights(Role::EnteAdmin, Some(ENTE), &[], &[]),
    )
    .await;
    let mut screens = Screens::new(label);
    eprintln!("{label}: screenshots in {}", screens.dir.display());

    browser
        .sign_in_by_keyboard(&base, "ada.admin", PASSWORD)
        .await;

    // Terminals: a wrong id, told next to the field with the focus on it.
    browser.goto(&format!("{base}/backoffice/terminali")).await;
    check_page(&browser, &mut screens, "terminals", &[]).await;
    browser.tab_to("terminale", 60).await;
    browser.type_text("POS1").await;
    browser.press(&TAB.to_string()).await;
    browser
        .focus_is("descrizione", "terminals, the description")
        .await;
    browser.type_text("POS del secondo sportello").await;
    browser.press(&ENTER.to_string()).await;
    browser
        .wait_for_element("the terminal's error", "#terminale-errore")
        .await;
    browser.focus_is("terminale", "terminals, the error").await;
    check_page(
        &browser,
        &mut screens,
        "terminals-error",
        &["status of 400"],
    )
    .await;
    browser.press_ctrl('a').await;
    browser.press("POS00002").await;
    browser.tab_to("registra", 5).await;
    browser.press(&ENTER.to_string()).await;
    browser
        .wait_for_element("the registered terminal", "#terminale-POS00002")
        .await;
    check_page(&browser, &mut screens, "terminals-registered", &[]).await;
    // Disabled from its row.
    browser.tab_to("disattiva-POS00002", 60).await;
    browser.press(&ENTER.to_string()).await;
    browser
        .wait_for_element("the disabled terminal", "#riattiva-POS00002")
        .await;
    check_page(&browser, &mut screens, "terminals-disabled", &[]).await;

    // Webhooks: registered, the secret once; the endpoint; deleting asks.
    browser.goto(&format!("{base}/backoffice/webhook")).await;
    check_page(&browser, &mut screens, "webhooks", &[]).await;
    browser.tab_to("url", 60).await;
    browser.type_text("http://127.0.0.1:9/incasso/eventi").await;
    browser.press(&TAB.to_string()).await;
    browser
        .focus_is("descrizione", "webhooks, the description")
        .await;
    browser.type_text("Gestionale dei tributi").await;
    browser.press(&ENTER.to_string()).await;
    browser.wait_for_element("the secret", "#segreto").await;
    let secret = browser.text(&browser.find("#segreto").await).await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    check_page(&browser, &mut screens, "webhook-registered", &[]).await;
    let link = browser.find("main a[href^='/backoffice/webhook/']").await;
    let href = browser.property(&link, "href").await;
    let delivery = failed_delivery(&app).await;
    browser.goto(href.as_str().unwrap()).await;
    check_page(&browser, &mut screens, "webhook-endpoint", &[]).await;
    // The failed delivery, sent again.
    browser.tab_to(&format!("riprova-{delivery}"), 60).await;
    browser.press(&ENTER.to_string()).await;
    browser
        .wait_for_element("the retry's outcome", "#esito")
        .await;
    check_page(&browser, &mut screens, "webhook-retried", &[]).await;
    browser.tab_to("elimina", 60).await;
    browser.press(&ENTER.to_string()).await;
    browser
        .wait_for_element("the confirmation", "#conferma-elimina")
        .await;
    browser.focus_is("annulla", "webhook, delete").await;
    check_page(&browser, &mut screens, "webhook-delete", &[]).await;

    // The desk tells of the flagged payment; its day says what to do,
    // and the payment is released after confirming.
    browser
        .goto(&format!("{base}/backoffice/sportello/{DESK}"))
        .await;
    browser
        .wait_for_element("the desk's warning", "#pos-avviso")
        .await;
    check_page(&browser, &mut screens, "desk-flagged", &[]).await;
    browser
        .goto(&format!("{base}/backoffice/sportello/{DESK}/giornata"))
        .await;
    browser
        .wait_for_element("the flagged payments", "#pos-anomalie")
        .await;
    check_page(&browser, &mut screens, "day-flagged", &[]).await;
    browser.tab_to("rilascia-S-1", 10).await;
    browser.press(&ENTER.to_string()).await;
    browser
        .wait_for_element("the release's confirmation", "#conferma-rilascio")
        .await;
    browser.focus_is("annulla", "release").await;
    check_page(&browser, &mut screens, "release", &[]).await;
    browser.press_shift_tab().await;
    browser
        .focus_is("conferma-rilascio", "release, the button")
        .await;
    browser.press(&ENTER.to_string()).await;
    browser.wait_for_element("the released day", "#esito").await;
    assert!(browser.try_find("#pos-anomalie").await.is_none());
    check_page(&browser, &mut screens, "day-released", &[]).await;
    let s = store.pos_session(ENTE, "S-1").await.unwrap().unwrap();
    assert_eq!(s.state, st::FAILED);
    browser.quit().await;
}

/// One browser at a time: the desktop, then the phone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_administrator_pages_by_keyboard_on_a_desktop_and_a_phone() {
    run(Screen::Desktop(1280, 900), "admin-pos-desktop").await;
    run(Screen::Phone(390, 844), "admin-pos-phone").await;
}
