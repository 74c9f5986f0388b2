//! The back office in a real browser (issue 16): headless Chromium driven
//! through chromedriver ([`browser`]), at a desktop's window size and at a
//! phone's. On each page axe-core finds no WCAG 2.1 A/AA violation, nothing
//! is refused or missing in the browser's console (the pages' strict CSP
//! included), and at the phone's size nothing overflows sideways (WCAG
//! 1.4.10, reflow). The way through is the keyboard's alone: the skip link
//! first, sign-in with Tab and Enter, the change of the provisional first
//! password it leads to, the audit log from the home page, the
//! accessibility statement from the footer, sign-out with the "Esci"
//! button, then a wrong password, the skip link used, and the retry.
//! Screenshots of each page go to a folder the test prints
//! (`INCASSO_SCREENSHOT_DIR` names another).
//!
//! Without Chromium and chromedriver (Debian `chromium`, `chromium-driver`)
//! the test is skipped with a note, or fails under `INCASSO_REQUIRE_TOOLS=1`
//! as `scripts/test.sh` runs it.
//!
//! One backend, SQLite, on purpose: what is under test here is the pages
//! in a browser (templates, styles, focus, keyboard), not the store. The
//! sign-in, sessions and sign-out that these pages call run on both
//! databases in `tests/backoffice.rs` and `crates/app/tests/operators.rs`;
//! a second browser walk on PostgreSQL would double the time and check
//! nothing more.

use crate::common::app;
use crate::common::browser;
use crate::common::page_check;

use app::gpd::ENTE;
use app::{TestApp, spawn_app};
use browser::{ARROW_RIGHT, Browser, ENTER, Focus, Screen, TAB};
use incasso_app::operators::{self, NewOperatorInput};
use incasso_app::{App, Caller, Settings};
use incasso_core::access::{Rights, Role};
use incasso_testkit::Backend;
use page_check::{Screens, check_page};
use std::time::Instant;

const USERNAME: &str = "mario.rossi";
const FULL_NAME: &str = "Mario Rossi";
/// The first password, provisional (an account made by an administrator).
const PASSWORD: &str = "Tributi-2026-Roma";
/// The one chosen at the first sign-in.
const NEW_PASSWORD: &str = "Incassi-Nuova-2027";
const WRONG: &str = "Sbagliata-2026!";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoffice_by_keyboard_in_a_desktop_window() {
    walk("desktop", Screen::Desktop(1280, 900)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoffice_by_keyboard_in_a_phone_sized_window() {
    walk("phone", Screen::Phone(390, 844)).await;
}

/// incasso on SQLite with an administrator of Ente A.
async fn app_with_operator() -> TestApp {
    let app = spawn_app(Backend::Sqlite).await;
    let system = App::new(app.store.clone(), Settings::new("http://127.0.0.1"));
    operators::create(
        &system.ctx(Caller::System("test")),
        NewOperatorInput {
            username: USERNAME.into(),
            full_name: FULL_NAME.into(),
            fiscal_code: None,
            email: None,
            rights: Rights {
                role: Role::EnteAdmin,
                ente: Some(ENTE.into()),
                grants: vec![],
                offices: vec![],
            },
            password: Some(PASSWORD.into()),
        },
    )
    .await
    .unwrap();
    app
}

/// What has the focus after one more Tab; it must be visible and show it.
async fn tab(browser: &Browser, context: &str) -> Focus {
    browser.press(&TAB.to_string()).await;
    let mut f = browser.focused().await;
    // Bootstrap Italia scrolls smoothly: a focus below the fold comes into
    // view a moment after the Tab, and on a busy machine (CI runs several
    // browsers on 2 cores) the animation's frames come late. A time bound,
    // not a count of polls, so that slow polls do not shorten it.
    let since = Instant::now();
    while !f.visible && since.elapsed() < std::time::Duration::from_secs(10) {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        f = browser.focused().await;
    }
    assert!(!f.is_body(), "{context}: Tab left the focus nowhere");
    assert!(
        f.visible,
        "{context}: {f} has the focus but is not visible after {:?} ({})",
        since.elapsed(),
        f.place
    );
    assert!(
        f.indicated,
        "{context}: {f} has the focus but shows no focus indicator ({})",
        f.style
    );
    f
}

/// Tab until `wanted` has the focus, within `at_most` presses; each stop
/// on the way is visible and shows its focus. Answers the stops.
async fn tab_to(
    browser: &Browser,
    context: &str,
    at_most: usize,
    wanted: impl Fn(&Focus) -> bool,
) -> Vec<Focus> {
    let mut stops = Vec::new();
    for _ in 0..at_most {
        let f = tab(browser, context).await;
        let found = wanted(&f);
        stops.push(f);
        if found {
            return stops;
        }
    }
    panic!(
        "{context}: not reached in {at_most} Tabs; the focus went through {}",
        stops
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
}

fn describe(stops: &[Focus]) -> String {
    stops
        .iter()
        .map(|f| f.to_string())
        .collect::<Vec<_>>()
        .join(" → ")
}

/// Types into the element that has the focus.
async fn type_here(browser: &Browser, text: &str) {
    let here = browser.active_element().await;
    browser.send_keys(&here, text).await;
}

async fn heading(browser: &Browser) -> String {
    let h1 = browser.find("h1").await;
    browser.text(&h1).await
}

/// The whole walk on `screen`.
async fn walk(label: &'static str, screen: Screen) {
    let started = Instant::now();
    let (width, height) = screen.size();
    let Some(browser) = Browser::start(screen).await else {
        return;
    };
    let app = app_with_operator().await;
    let base = app.server.base.clone();
    let mut screens = Screens::new(label);
    eprintln!("{label}: screenshots in {}", screens.dir.display());

    // The page is as wide as asked (a desktop window's height counts
    // Chromium's frame too: 900 leaves the page about 757 pixels).
    browser.goto(&format!("{base}/backoffice/login")).await;
    let viewport = browser
        .execute("return [innerWidth, innerHeight]", vec![])
        .await;
    assert_eq!(
        viewport[0], width,
        "{label}: innerWidth, innerHeight = {viewport}"
    );
    if let Screen::Phone(..) = screen {
        assert_eq!(viewport[1], height, "{label}: innerHeight");
    }

    // 1. The sign-in page.
    assert_eq!(browser.title().await, "Accesso · incasso");
    assert_eq!(heading(&browser).await, "Accesso al back office");
    assert_eq!(
        browser
            .execute("return document.documentElement.lang", vec![])
            .await,
        "it"
    );
    check_page(&browser, &mut screens, "sign-in", &[]).await;

    // 2. Signing in with the keyboard alone. Nothing has the focus yet;
    // the first Tab reaches the skip link, which shows itself.
    let context = format!("{label} sign-in");
    assert!(
        browser.focused().await.is_body(),
        "{context}: the focus starts on the page"
    );
    let skip = tab(&browser, &context).await;
    assert_eq!(
        (skip.tag.as_str(), skip.text.as_str()),
        ("a", "Vai al contenuto principale"),
        "{context}: the first Tab reaches the skip link"
    );
    screens.save(&browser, "sign-in-skip-link").await;
    let stops = tab_to(&browser, &context, 3, |f| f.id == "username").await;
    eprintln!("{context}: Tab order: {skip} → {}", describe(&stops));
    type_here(&browser, USERNAME).await;
    let password = tab(&browser, &context).await;
    assert_eq!(password.id, "password", "{context}: Tab from the username");
    type_here(&browser, PASSWORD).await;
    browser.press(&ENTER.to_string()).await;

    // The first password is provisional: the password page comes first,
    // and it too is filled in by keyboard.
    browser
        .wait_for(
            "the password page",
            "location.pathname === '/backoffice/password' && document.readyState === 'complete'",
        )
        .await;
    assert_eq!(heading(&browser).await, "Cambio password");
    let status = browser.find("[role=status]").await;
    assert!(
        browser.text(&status).await.contains("provvisoria"),
        "{label}: the page says why"
    );
    check_page(&browser, &mut screens, "password-change", &[]).await;
    let context = format!("{label} password change");
    assert!(browser.focused().await.is_body(), "{context}");
    let stops = tab_to(&browser, &context, 4, |f| f.id == "current_password").await;
    eprintln!("{context}: Tab order: {}", describe(&stops));
    assert_eq!(stops[0].text, "Vai al contenuto principale", "{context}");
    type_here(&browser, PASSWORD).await;
    assert_eq!(
        tab(&browser, &context).await.id,
        "new_password",
        "{context}"
    );
    type_here(&browser, NEW_PASSWORD).await;
    assert_eq!(
        tab(&browser, &context).await.id,
        "confirm_password",
        "{context}"
    );
    type_here(&browser, NEW_PASSWORD).await;
    browser.press(&ENTER.to_string()).await;
    browser
        .wait_for(
            "the home page",
            "location.pathname === '/backoffice/' && document.readyState === 'complete'",
        )
        .await;
    assert_eq!(heading(&browser).await, "Cruscotto");
    assert!(browser.source().await.contains(FULL_NAME));
    let source = browser.source().await;
    assert!(source.contains("Amministratore dell"), "{source}");
    check_page(&browser, &mut screens, "home", &[]).await;

    // The audit log, from the home page's link by keyboard: it holds the
    // sign-in and the change of password just made.
    // On a phone the sections are behind a menu button (a <details>,
    // which opens with Enter and needs no script).
    let context = format!("{label} home");
    // An administrator's menu lists some twenty sections before the log.
    let mut stops = tab_to(&browser, &context, 30, |f| {
        (f.tag == "a" && f.text == "Giornale degli eventi")
            || (f.tag == "summary" && f.text == "Menu delle sezioni")
    })
    .await;
    if stops.last().is_some_and(|f| f.tag == "summary") {
        assert!(
            matches!(screen, Screen::Phone(..)),
            "{context}: a menu button on a desktop"
        );
        browser.press(&ENTER.to_string()).await;
        screens.save(&browser, "home-menu-open").await;
        stops.extend(
            tab_to(&browser, &context, 30, |f| {
                f.tag == "a" && f.text == "Giornale degli eventi"
            })
            .await,
        );
    }
    eprintln!("{context}: Tab order: {}", describe(&stops));
    browser.press(&ENTER.to_string()).await;
    browser
        .wait_for(
            "the audit log",
            "location.pathname === '/backoffice/giornale' && document.readyState === 'complete'",
        )
        .await;
    assert_eq!(heading(&browser).await, "Giornale degli eventi");
    assert!(browser.source().await.contains("operator.change_password"));
    check_page(&browser, &mut screens, "audit-log", &[]).await;
    // Its table scrolls sideways in a narrow window: the keyboard reaches
    // it (a focusable region named by the caption) and scrolls it.
    let context = format!("{label} audit log");
    let stops = tab_to(&browser, &context, 30, |f| f.role == "region").await;
    eprintln!("{context}: Tab order: {}", describe(&stops));
    let overflow = browser
        .execute(
            "const r = document.querySelector('.table-responsive');
             return [r.scrollWidth, r.clientWidth]",
            vec![],
        )
        .await;
    if overflow[0].as_u64() > overflow[1].as_u64() {
        browser.press(&ARROW_RIGHT.to_string().repeat(5)).await;
        // The arrow keys scroll smoothly: the scroll takes a moment.
        browser
            .wait_for(
                &format!("{context}: the arrow keys scroll the table ({overflow})"),
                "document.querySelector('.table-responsive').scrollLeft > 0",
            )
            .await;
        screens.save(&browser, "audit-log-table-scrolled").await;
    }

    // 4. The accessibility statement, from the footer's link by keyboard
    // (the home page's footer).
    browser.goto(&format!("{base}/backoffice/")).await;
    let context = format!("{label} home");
    let stops = tab_to(&browser, &context, 30, |f| {
        f.tag == "a" && f.text == "Dichiarazione di accessibilità"
    })
    .await;
    eprintln!("{context}: Tab order: {}", describe(&stops));
    assert_eq!(stops[0].text, "Vai al contenuto principale");
    assert!(
        stops.iter().any(|f| f.tag == "button" && f.text == "Esci"),
        "{context}: the Esci button is on the way: {}",
        describe(&stops)
    );
    browser.press(&ENTER.to_string()).await;
    browser
        .wait_for(
            "the accessibility statement",
            "location.pathname === '/backoffice/accessibilita' && document.readyState === 'complete'",
        )
        .await;
    assert_eq!(heading(&browser).await, "Dichiarazione di accessibilità");
    check_page(&browser, &mut screens, "accessibility", &[]).await;

    // 5. Sign-out by keyboard: Tab to "Esci", Enter.
    browser.goto(&format!("{base}/backoffice/")).await;
    let context = format!("{label} sign-out");
    tab_to(&browser, &context, 4, |f| {
        f.tag == "button" && f.text == "Esci"
    })
    .await;
    screens.save(&browser, "home-esci-focused").await;
    browser.press(&ENTER.to_string()).await;
    browser
        .wait_for(
            "the sign-in page after sign-out",
            "location.pathname === '/backoffice/login' && location.search === '?uscita=1' && document.readyState === 'complete' \
             && !!document.querySelector('[role=status]')",
        )
        .await;
    assert_eq!(heading(&browser).await, "Accesso al back office");
    let notice = browser.find("[role=status]").await;
    assert_eq!(browser.text(&notice).await, "Uscita effettuata.");
    check_page(&browser, &mut screens, "signed-out", &[]).await;
    // The session is over: the home page leads to the sign-in form.
    browser.goto(&format!("{base}/backoffice/")).await;
    assert_eq!(browser.current_path().await, "/backoffice/login");

    // 3. A wrong password, by keyboard, through the skip link this time:
    // Enter on it, and the next Tab is in the main content, the username.
    let context = format!("{label} wrong password");
    let skip = tab(&browser, &context).await;
    assert_eq!(skip.text, "Vai al contenuto principale", "{context}");
    browser.press(&ENTER.to_string()).await;
    assert_eq!(browser.current_path().await, "/backoffice/login#contenuto");
    let username = tab(&browser, &context).await;
    assert_eq!(
        username.id, "username",
        "{context}: after the skip link, Tab reaches the form"
    );
    type_here(&browser, USERNAME).await;
    tab(&browser, &context).await;
    type_here(&browser, WRONG).await;
    browser.press(&ENTER.to_string()).await;
    browser
        .wait_for(
            "the sign-in error",
            "document.readyState === 'complete' && !!document.getElementById('errore-accesso')",
        )
        .await;
    let error = browser.find("#errore-accesso").await;
    let message = browser.text(&error).await;
    assert!(
        message.starts_with("nome utente o password errati"),
        "{context}: {message}"
    );
    assert_eq!(
        browser
            .execute(
                "const e = document.getElementById('errore-accesso');
                 return [e.getAttribute('role'), document.getElementById('username')
                   .getAttribute('aria-describedby')]",
                vec![]
            )
            .await,
        serde_json::json!(["alert", "errore-accesso"]),
        "{context}: the error is announced and tied to the field"
    );
    let field = browser.find("#username").await;
    assert_eq!(browser.property(&field, "value").await, USERNAME);
    let field = browser.find("#password").await;
    assert_eq!(browser.property(&field, "value").await, "");
    check_page(
        &browser,
        &mut screens,
        "sign-in-error",
        // The refusal is answered 401, which the console reports.
        &["/backoffice/login - Failed to load resource: the server responded with a status of 401"],
    )
    .await;

    // Still usable by keyboard: the same way to the form, the name kept,
    // the right password (the new one) this time.
    assert!(browser.focused().await.is_body(), "{context}");
    let stops = tab_to(&browser, &context, 4, |f| f.id == "username").await;
    assert_eq!(stops[0].text, "Vai al contenuto principale", "{context}");
    assert_eq!(
        stops.last().unwrap().text,
        USERNAME,
        "{context}: the name kept"
    );
    let password = tab(&browser, &context).await;
    assert_eq!(password.id, "password", "{context}");
    type_here(&browser, NEW_PASSWORD).await;
    browser.press(&ENTER.to_string()).await;
    browser
        .wait_for(
            "the home page after the retry",
            "location.pathname === '/backoffice/' && document.readyState === 'complete'",
        )
        .await;
    assert_eq!(heading(&browser).await, "Cruscotto");
    assert!(browser.source().await.contains(FULL_NAME));

    browser.quit().await;
    eprintln!(
        "{label} ({width}x{height}): walked in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
