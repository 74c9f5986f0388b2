//! A clerk's day in the back office, in a real browser (issue 16's "done
//! when"): `incasso serve --demo` runs as a user starts it, and headless
//! Chromium, driven as a person would drive it, goes through
//! 1. sign-in with the simulator's test SPID identity, sign-out, and
//!    sign-in with the password;
//! 2. a supply loaded from a file, followed until it is loaded;
//! 3. a position of it found by the debtor's fiscal code, and its notice
//!    printed (the PDF behind the page's link);
//! 4. the position paid with `incasso simulator pay`, and shown paid;
//! 5. the PSP's flows published, fetched from the page, and the position
//!    shown paid and reported;
//! 6. the treasury's file (the bank's CSV export, `tesoreria-csv`) loaded,
//!    reconciliation run, one sospeso matched by itself;
//! 7. the other sospeso, whose causale the bank mangled, regularized by
//!    hand with its flow.
//!
//! Every page on the way passes axe-core with a quiet console.
//!
//! SQLite only: the pages' data paths run on both databases in the
//! server's HTTP tests.

use crate::common::browser;
use crate::common::page_check;
use crate::common::process;

use browser::{Browser, Screen};
use page_check::{Screens, check_page};
use process::{Running, free_port, incasso, temp_dir, wait_for_health};
use serde_json::Value;
use std::process::Stdio;

/// The supply: two TARI positions of two debtors.
fn supply(second_debtor: &str) -> String {
    format!(
        "codice;servizio;codice_fiscale;nominativo;rata;importo;causale;scadenza;iuv;accertamento;operazione
E2E-1;TARI;RSSMRA85T10A562S;Mario Rossi;0;123,45;TARI 2026 saldo;31/12/2027;;2026/ACC-TARI;
E2E-2;TARI;{second_debtor};Laura Bianchi;0;67,89;TARI 2026 saldo;31/12/2027;;2026/ACC-TARI;
"
    )
}

async fn wait_text(browser: &Browser, what: &str, text: &str) {
    browser
        .wait_for(
            what,
            &format!(
                "document.readyState === 'complete' && document.body.innerText.includes({})",
                serde_json::to_string(text).unwrap()
            ),
        )
        .await;
}

async fn click(browser: &Browser, css: &str) {
    // Bootstrap Italia scrolls smoothly: a click computed mid-scroll lands
    // on whatever passes under it. Bring the element to the middle first.
    browser
        .execute(
            "document.querySelector(arguments[0])?.scrollIntoView({block: 'center', behavior: 'instant'})",
            vec![Value::String(css.into())],
        )
        .await;
    let e = browser.find(css).await;
    browser.click(&e).await;
}

async fn type_into(browser: &Browser, css: &str, text: &str) {
    let e = browser.find(css).await;
    browser.send_keys(&e, text).await;
}

/// Clicks the visible link whose text is `text` (a hidden copy, as the
/// phone's menu on a desktop, is not what a person clicks).
async fn follow(browser: &Browser, text: &str) {
    let found = browser
        .execute(
            "document.querySelectorAll('[data-e2e-target]').forEach(e => e.removeAttribute('data-e2e-target'));
             const a = [...document.querySelectorAll('a')]
               .find(a => a.innerText.trim() === arguments[0] && a.offsetParent !== null);
             if (!a) return false;
             a.setAttribute('data-e2e-target', '1');
             return true;",
            vec![Value::String(text.into())],
        )
        .await;
    let here = browser.current_url().await;
    assert_eq!(
        found,
        Value::Bool(true),
        "no visible link «{text}» on {here}"
    );
    click(browser, "a[data-e2e-target]").await;
}

fn pay(dir: &std::path::Path, nav: &str) {
    let out = incasso()
        .args(["simulator", "pay", "--notice", nav, "--demo-json"])
        .arg(dir.join("demo.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "simulator pay: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The position's notice number, from its page.
async fn notice_number(browser: &Browser) -> String {
    let text = browser
        .execute("return document.body.innerText", vec![])
        .await
        .as_str()
        .unwrap()
        .to_string();
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 18 && w.starts_with('3'))
        .unwrap_or_else(|| panic!("no notice number on the page: {text}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_loads_finds_prints_sees_paid_reported_reconciled_and_regularizes() {
    let Some(browser) = Browser::start(Screen::Desktop(1280, 900)).await else {
        return;
    };
    let dir = temp_dir("clerk");
    let port = free_port();
    let _server = incasso()
        .args([
            "serve",
            "--demo",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(&dir)
        .env_remove("INCASSO_DATABASE_URL")
        .stderr(Stdio::null())
        .spawn()
        .map(Running)
        .unwrap();
    assert!(wait_for_health(port), "serve --demo did not start");
    let demo: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("demo.json")).unwrap()).unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let ente = &demo["enti"][0];
    let fc = ente["fiscal_code"].as_str().unwrap().to_string();
    let user = ente["backoffice_user"].as_str().unwrap().to_string();
    let password = ente["backoffice_password"].as_str().unwrap().to_string();
    let simulator = demo["simulator_url"].as_str().unwrap().to_string();
    let mut screens = Screens::new("clerk");
    eprintln!("screenshots in {}", screens.dir.display());

    // 1. SPID: the test identity of this Ente's administrator.
    let identity = demo["test_identities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["operator"] == user.as_str())
        .expect("a test identity for the Ente's administrator");
    let identity_fc = identity["fiscal_code"].as_str().unwrap();
    browser.goto(&format!("{base}/backoffice/login")).await;
    check_page(&browser, &mut screens, "sign-in", &[]).await;
    follow(&browser, "Entra con SPID o CIE").await;
    browser
        .wait_for("the provider's page", "document.readyState === 'complete' && !!document.querySelector('input[name=identity]')")
        .await;
    screens.save(&browser, "spid-provider").await;
    click(
        &browser,
        &format!("input[name=identity][value=\"{identity_fc}\"]"),
    )
    .await;
    click(&browser, "button[value=entra]").await;
    browser
        .wait_for(
            "the home page after SPID",
            "location.pathname === '/backoffice/' && document.readyState === 'complete'",
        )
        .await;
    assert!(
        browser
            .source()
            .await
            .contains(identity["name"].as_str().unwrap_or(""))
    );
    check_page(&browser, &mut screens, "home-spid", &[]).await;
    click(&browser, "form[action='/backoffice/logout'] button").await;
    wait_text(&browser, "signed out", "Uscita effettuata").await;
    // And with the password.
    type_into(&browser, "#username", &user).await;
    type_into(&browser, "#password", &password).await;
    click(&browser, "main form button[type=submit]").await;
    browser
        .wait_for(
            "the home page",
            "location.pathname === '/backoffice/' && document.readyState === 'complete'",
        )
        .await;

    // 2. The supply, from a file, in incasso's CSV layout.
    let supply_file = dir.join("tari-e2e.csv");
    let second_debtor = incasso_core::sample::personal_fiscal_code(4242);
    std::fs::write(&supply_file, supply(&second_debtor)).unwrap();
    follow(&browser, "Forniture").await;
    wait_text(&browser, "the supplies", "Forniture").await;
    browser
        .goto(&format!("{base}/backoffice/forniture/carica"))
        .await;
    check_page(&browser, &mut screens, "supply-upload", &[]).await;
    type_into(
        &browser,
        "input[type=file][name=file]",
        supply_file.to_str().unwrap(),
    )
    .await;
    browser
        .execute(
            "const s = document.querySelector('select[name=tracciato]'); s.value = 'incasso-csv'; return s.value",
            vec![],
        )
        .await;
    click(
        &browser,
        "form[action='/backoffice/forniture/carica'] button[type=submit]",
    )
    .await;
    // The page reloads itself while the supply loads.
    browser
        .wait_for(
            "the supply loaded",
            "document.readyState === 'complete' && document.querySelector('[role=status] strong')?.innerText === 'Caricata'",
        )
        .await;
    check_page(&browser, &mut screens, "supply-loaded", &[]).await;

    // 3. Found by the debtor, its notice printed.
    follow(&browser, "Posizioni").await;
    type_into(&browser, "#debitore", "RSSMRA85T10A562S").await;
    click(&browser, "form[role=search] button[type=submit]").await;
    wait_text(&browser, "the search's result", "E2E-1").await;
    check_page(&browser, &mut screens, "positions-found", &[]).await;
    follow(&browser, "E2E-1").await;
    wait_text(&browser, "the position", "Posizione E2E-1").await;
    assert!(browser.source().await.contains("Da pagare"));
    check_page(&browser, &mut screens, "position", &[]).await;
    let nav = notice_number(&browser).await;
    let pdf_href = browser
        .execute(
            "return [...document.querySelectorAll('a')].find(a => a.innerText.includes('Stampa l')).href",
            vec![],
        )
        .await
        .as_str()
        .unwrap()
        .to_string();
    let http = reqwest::Client::new();
    let pdf = http
        .get(&pdf_href)
        .header("cookie", browser.cookie_header().await)
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.status(), 200);
    let bytes = pdf.bytes().await.unwrap();
    assert!(bytes.starts_with(b"%PDF"), "the notice is a PDF");

    // 4. Paid at a PSP: `incasso simulator pay`.
    pay(&dir, &nav);
    browser.goto(&browser.current_url().await).await;
    wait_text(&browser, "the position paid", "Pagata").await;
    check_page(&browser, &mut screens, "position-paid", &[]).await;
    // The other position is paid too, and reported in a flow of its own.
    browser
        .goto(&format!(
            "{base}/backoffice/posizioni?debitore={second_debtor}"
        ))
        .await;
    follow(&browser, "E2E-2").await;
    wait_text(&browser, "the second position", "Posizione E2E-2").await;
    let nav2 = notice_number(&browser).await;

    // 5. The PSP reports: each payment in a flow of its own.
    let published: Vec<Value> = http
        .post(format!("{simulator}/simulator/flows"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first_flow = published
        .iter()
        .find(|f| f["ente"] == fc.as_str())
        .expect("a flow for the Ente")
        .clone();
    pay(&dir, &nav2);
    let published: Vec<Value> = http
        .post(format!("{simulator}/simulator/flows"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let second_flow = published
        .iter()
        .find(|f| f["ente"] == fc.as_str())
        .expect("a second flow for the Ente")
        .clone();
    follow(&browser, "Rendicontazioni").await;
    click(&browser, "form[action='/backoffice/flussi/scarica'] button").await;
    wait_text(&browser, "the flows fetched", "Flussi scaricati dal Nodo").await;
    let first_id = first_flow["flow_id"].as_str().unwrap();
    let second_id = second_flow["flow_id"].as_str().unwrap();
    assert!(browser.source().await.contains(first_id));
    check_page(&browser, &mut screens, "flows", &[]).await;
    browser
        .goto(&format!(
            "{base}/backoffice/posizioni?debitore=RSSMRA85T10A562S"
        ))
        .await;
    follow(&browser, "E2E-1").await;
    wait_text(&browser, "the position reported", "Pagata e rendicontata").await;

    // 6. The treasury: the bank's export, one transfer per flow; the
    // second's causale lost the flow's id on the way.
    let cents = |f: &Value| f["total_cents"].as_i64().unwrap();
    let euro = |c: i64| format!("{},{:02}", c / 100, c % 100);
    let today = chrono::Utc::now().format("%d/%m/%Y");
    let journal = format!(
        "numero;data_operazione;data_valuta;importo;segno;stato;conto;causale;ordinante;trn\n\
         0000101;{today};{today};{};E;ESEGUITO;0000001;BONIFICO SEPA /PUR/LGPE-RIVERSAMENTO/URI/{first_id};PSP SIMULATO SPA;\n\
         0000102;{today};{today};{};E;ESEGUITO;0000001;ACCREDITO DA PSP;PSP SIMULATO SPA;\n",
        euro(cents(&first_flow)),
        euro(cents(&second_flow)),
    );
    let journal_file = dir.join("tesoreria.csv");
    std::fs::write(&journal_file, journal).unwrap();
    browser.goto(&format!("{base}/backoffice/tesoreria")).await;
    type_into(
        &browser,
        "input[type=file][name=file]",
        journal_file.to_str().unwrap(),
    )
    .await;
    type_into(&browser, "#tracciato", "tesoreria-csv").await;
    click(
        &browser,
        "form[action='/backoffice/tesoreria/carica'] button[type=submit]",
    )
    .await;
    browser
        .wait_for(
            "the treasury file taken",
            "document.readyState === 'complete' && location.pathname === '/backoffice/tesoreria'",
        )
        .await;
    click(
        &browser,
        "form[action='/backoffice/tesoreria/riconcilia'] button",
    )
    .await;
    wait_text(&browser, "reconciled", "Abbinato").await;
    check_page(&browser, &mut screens, "treasury-reconciled", &[]).await;
    let row_of = |number: &str| {
        format!(
            "return [...document.querySelectorAll('tbody tr')].find(r => r.innerText.includes('{number}'))?.innerText || ''"
        )
    };
    let matched = browser.execute(&row_of("0000101"), vec![]).await;
    assert!(
        matched.as_str().unwrap().contains("Abbinato"),
        "the sospeso with the flow's id matched by itself: {matched}"
    );
    let unmatched = browser.execute(&row_of("0000102"), vec![]).await;
    assert!(
        !unmatched.as_str().unwrap().contains("Abbinato"),
        "the mangled sospeso is left to a person: {unmatched}"
    );

    // 7. The sospeso that did not match, tied to its flow by hand.
    let movement = browser
        .execute(
            "return [...document.querySelectorAll('a')].find(a => a.href.includes('movimento') && a.href.includes('0000102')).getAttribute('href')",
            vec![],
        )
        .await
        .as_str()
        .expect("a link to the unmatched sospeso")
        .to_string();
    click(&browser, &format!("a[href=\"{movement}\"]")).await;
    wait_text(&browser, "the sospeso's page", "Regolarizza a mano").await;
    check_page(&browser, &mut screens, "sospeso", &[]).await;
    // Bootstrap Italia draws the box on the label, which is what a person
    // clicks.
    let box_id = browser
        .execute(
            "return document.querySelector(`input[name=flusso][value=\"${arguments[0]}\"]`).id",
            vec![Value::String(second_id.into())],
        )
        .await;
    click(
        &browser,
        &format!("label[for=\"{}\"]", box_id.as_str().unwrap()),
    )
    .await;
    type_into(
        &browser,
        "#nota",
        "Causale della banca senza identificativo del flusso",
    )
    .await;
    click(
        &browser,
        "form[action='/backoffice/tesoreria/regolarizza'] button[type=submit]",
    )
    .await;
    wait_text(&browser, "regularized", "Regolarizzato a mano").await;
    check_page(&browser, &mut screens, "sospeso-regularized", &[]).await;
    browser.quit().await;
}
