//! A citizen on the payment portal, in a real browser (issue 17's "done
//! when"): `incasso serve --demo` runs as a user starts it (its simulator
//! plays pagoPA Checkout, the SPID/CIE provider and the SMTP server), and
//! headless Chromium goes through
//! 1. a notice found by its number and paid through Checkout, the receipt
//!    email read from the SMTP sink and its PDF checked (amount, IUV);
//! 2. a cart of three notices of two Enti paid at once;
//! 3. a spontaneous payment through its form;
//! 4. a receipt found by IUV and fiscal code;
//! 5. the personal area after signing in with the citizen's test identity,
//!    listing their positions at both Enti.
//!
//! The first pass is driven by the KEYBOARD ALONE (Tab, Shift+Tab, Enter,
//! Space through WebDriver's key actions: no clicks); a second runs on a
//! phone-sized window (375 x 740) with no sideways scrolling; the pages are
//! also checked with the text at 200 %. axe-core reports nothing on every
//! page and in every state of every form (empty, with errors, filled).
//!
//! SQLite only: the pages' data paths run on both databases in the
//! server's HTTP tests.

use crate::common::browser;
use crate::common::page_check;
use crate::common::process;

use browser::{Browser, ENTER, Screen, TAB};

/// A form sent back with its errors answers 400 (or 404 for what is not
/// found), which the console notes: expected there.
const REFUSED: &[&str] = &["the server responded with a status of 4"];

/// WebDriver's Arrow Down.
const ARROW_DOWN: char = '\u{E015}';
use page_check::{Screens, check_page};
use process::{Running, free_port, incasso, temp_dir, wait_for_health};
use serde_json::Value;
use std::process::Stdio;

/// The demo, served.
struct Demo {
    _server: Running,
    dir: std::path::PathBuf,
    base: String,
    json: Value,
}

impl Demo {
    fn start(name: &str) -> Demo {
        let dir = temp_dir(name);
        let port = free_port();
        let server = incasso()
            .args([
                "serve",
                "--demo",
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(&dir)
            .env_remove("INCASSO_DATABASE_URL")
            // Two passes of every flow from one address in a minute: more
            // lookups and payments than a person makes (the limits'
            // defaults are tested in the server's portal_limits).
            .env("INCASSO_PORTAL_LIMITS", "lookup=600/300,create=120/60")
            .stderr(Stdio::null())
            .spawn()
            .map(Running)
            .unwrap();
        assert!(wait_for_health(port), "serve --demo did not start");
        let json: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("demo.json")).unwrap()).unwrap();
        Demo {
            _server: server,
            dir,
            base: format!("http://127.0.0.1:{port}"),
            json,
        }
    }

    fn ente(&self, i: usize) -> &Value {
        &self.json["enti"][i]
    }

    fn fc(&self, i: usize) -> String {
        self.ente(i)["fiscal_code"].as_str().unwrap().to_string()
    }

    /// The Ente's portal, as demo.json gives it (else where DESIGN.md
    /// puts it).
    fn portal(&self, i: usize) -> String {
        self.ente(i)["portal_url"]
            .as_str()
            .filter(|u| !u.is_empty())
            .map(|u| u.trim_end_matches('/').to_string())
            .unwrap_or_else(|| format!("{}/portale/{}", self.base, self.fc(i)))
    }
}

/// The page's visible text.
async fn body_text(browser: &Browser) -> String {
    browser
        .execute("return document.body.innerText", vec![])
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
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

/// How a pass drives the pages: by keyboard alone, or by pointer (clicks
/// and typing into fields found by CSS).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Drive {
    Keyboard,
    Pointer,
}

/// Moves the focus with Tab (forward) until the element `css` names has
/// it, as a person tabbing through the page; fails after `limit` steps.
/// Each step's focus must be visible and show that it has the focus.
async fn tab_to(browser: &Browser, css: &str) {
    let limit = 80;
    let matches = format!(
        "return !!document.activeElement && document.activeElement.matches({})",
        serde_json::to_string(css).unwrap()
    );
    for _ in 0..limit {
        if browser.execute(&matches, vec![]).await == Value::Bool(true) {
            // Bootstrap Italia scrolls smoothly: the focused element comes
            // into view over a few frames.
            browser
                .wait_for(
                    "the focused element in view",
                    "(() => { const r = document.activeElement.getBoundingClientRect();
                       return r.bottom > 0 && r.top < innerHeight && r.right > 0 && r.left < innerWidth; })()",
                )
                .await;
            let f = browser.focused().await;
            assert!(f.visible, "{css} has the focus but is not visible: {f}");
            assert!(
                f.indicated,
                "{css} has the focus but does not show it: {f} ({})",
                f.style
            );
            return;
        }
        browser.press(&TAB.to_string()).await;
    }
    panic!(
        "{css} never got the focus in {limit} presses of Tab on {}",
        browser.current_url().await
    );
}

/// Acts on the control `css` names: by keyboard, Tab to it then Enter
/// (Space for a checkbox or radio); by pointer, a click.
async fn activate(browser: &Browser, drive: Drive, css: &str) {
    match drive {
        Drive::Keyboard => {
            tab_to(browser, css).await;
            let kind = browser
                .execute(
                    "const e = document.activeElement; return (e.type || '').toLowerCase()",
                    vec![],
                )
                .await;
            if kind == "checkbox" || kind == "radio" {
                browser.press(" ").await;
            } else {
                browser.press(&ENTER.to_string()).await;
            }
        }
        Drive::Pointer => {
            // Bootstrap Italia scrolls smoothly: a click computed mid-scroll
            // lands on whatever passes under it.
            browser
                .execute(
                    "document.querySelector(arguments[0])?.scrollIntoView({block: 'center', behavior: 'instant'})",
                    vec![Value::String(css.into())],
                )
                .await;
            let e = browser.find(css).await;
            browser.click(&e).await;
        }
    }
}

/// Types `text` into the field `css` names (clearing it first): by
/// keyboard, Tab to it, select what is there and type over it.
async fn fill(browser: &Browser, drive: Drive, css: &str, text: &str) {
    match drive {
        Drive::Keyboard => {
            tab_to(browser, css).await;
            // Select all (Ctrl+A) then type: what a person does to replace
            // a field's text.
            browser.press_ctrl('a').await;
            browser.press(text).await;
        }
        Drive::Pointer => {
            let e = browser.find(css).await;
            browser
                .execute(
                    "document.querySelector(arguments[0]).value = ''",
                    vec![Value::String(css.into())],
                )
                .await;
            browser.send_keys(&e, text).await;
        }
    }
    let value = browser
        .execute(
            "return document.querySelector(arguments[0]).value",
            vec![Value::String(css.into())],
        )
        .await;
    assert_eq!(value, Value::String(text.into()), "the field {css}");
}

/// Checks the radio button of group `name` with value `value`: by
/// keyboard, Tab into the group (to its checked or first button) and the
/// arrow keys to the one wanted, as radio groups are walked.
async fn pick_radio(browser: &Browser, drive: Drive, name: &str, value: &str) {
    let css = format!("input[name={name}][value=\"{value}\"]");
    match drive {
        Drive::Keyboard => {
            tab_to(browser, &format!("input[name={name}]")).await;
            let on = format!(
                "return document.activeElement.matches({})",
                serde_json::to_string(&css).unwrap()
            );
            for _ in 0..30 {
                if browser.execute(&on, vec![]).await == Value::Bool(true) {
                    break;
                }
                browser.press(&ARROW_DOWN.to_string()).await;
            }
            browser.press(" ").await;
        }
        Drive::Pointer => activate(browser, drive, &css).await,
    }
    let checked = browser
        .execute(
            "return document.querySelector(arguments[0]).checked",
            vec![Value::String(css.clone())],
        )
        .await;
    assert_eq!(checked, Value::Bool(true), "{css} checked");
}

/// Follows the visible link whose text includes `text`: by keyboard,
/// tabbing to it.
async fn follow(browser: &Browser, drive: Drive, text: &str) {
    let found = browser
        .execute(
            "document.querySelectorAll('[data-e2e-target]').forEach(e => e.removeAttribute('data-e2e-target'));
             const a = [...document.querySelectorAll('a')]
               .find(a => a.innerText.trim().includes(arguments[0]) && a.offsetParent !== null);
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
    activate(browser, drive, "a[data-e2e-target]").await;
}

/// The text at 200 %: the root font size doubled (Bootstrap Italia sizes
/// its text in rem), and every page of `urls` checked for what would be
/// lost: nothing wider than the window, no text cut by its box, no two
/// controls on top of each other, every control in view sideways.
async fn check_text_zoom(browser: &Browser, screens: &mut Screens, urls: &[(&str, String)]) {
    for (name, url) in urls {
        browser.goto(url).await;
        browser
            .wait_for("the page", "document.readyState === 'complete'")
            .await;
        let problems = browser
            .execute(
                "document.documentElement.style.fontSize = '200%';
                 const out = [];
                 const width = document.documentElement.clientWidth;
                 if (document.documentElement.scrollWidth > width) {
                   out.push('the page is wider than the window: ' + document.documentElement.scrollWidth + ' > ' + width);
                 }
                 const controls = [...document.querySelectorAll('main a, main button, main input, main select, main textarea, main label, main h1, main h2, header a, header button')]
                   .filter(e => e.offsetParent !== null && e.type !== 'hidden');
                 for (const e of controls) {
                   const r = e.getBoundingClientRect();
                   const s = getComputedStyle(e);
                   if (r.width < 1 || r.height < 1) { continue; }
                   if (r.left < -1 || r.right > width + 1) {
                     out.push('out of view sideways: ' + e.outerHTML.slice(0, 120));
                   }
                   const clips = /(hidden|clip)/.test(s.overflowX + s.overflowY);
                   if (clips && !['INPUT', 'SELECT', 'TEXTAREA'].includes(e.tagName)
                       && (e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1)) {
                     out.push('text cut by its box: ' + e.outerHTML.slice(0, 120));
                   }
                 }
                 // Controls that are not inside one another must not overlap.
                 const boxes = controls.filter(e => ['A', 'BUTTON', 'INPUT', 'SELECT', 'TEXTAREA'].includes(e.tagName)
                   && !(e.type === 'checkbox' || e.type === 'radio'));
                 for (let i = 0; i < boxes.length; i++) {
                   for (let j = i + 1; j < boxes.length; j++) {
                     const [a, b] = [boxes[i], boxes[j]];
                     if (a.contains(b) || b.contains(a)) { continue; }
                     const [p, q] = [a.getBoundingClientRect(), b.getBoundingClientRect()];
                     const dx = Math.min(p.right, q.right) - Math.max(p.left, q.left);
                     const dy = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
                     if (dx > 2 && dy > 2) {
                       out.push('overlap: ' + a.outerHTML.slice(0, 80) + ' / ' + b.outerHTML.slice(0, 80));
                     }
                   }
                 }
                 return out;",
                vec![],
            )
            .await;
        screens.save(browser, &format!("zoom-200-{name}")).await;
        let problems = problems.as_array().cloned().unwrap_or_default();
        assert!(
            problems.is_empty(),
            "{name} at 200 % text ({url}):\n{}",
            problems
                .iter()
                .map(|p| format!("- {}", p.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// The portal's home and its footer pages, by keyboard: the first steps
/// of every visit.
async fn home(browser: &Browser, drive: Drive, screens: &mut Screens, demo: &Demo, ente: usize) {
    browser.goto(&format!("{}/", demo.portal(ente))).await;
    wait_text(
        browser,
        "the portal's home",
        demo.ente(ente)["name"].as_str().unwrap(),
    )
    .await;
    check_page(browser, screens, "home", &[]).await;
    follow(browser, drive, "Informativa privacy").await;
    wait_text(browser, "the privacy notice", "Informativa").await;
    check_page(browser, screens, "privacy", &[]).await;
    follow(browser, drive, "Dichiarazione di accessibilità").await;
    wait_text(browser, "the accessibility statement", "accessibilità").await;
    check_page(browser, screens, "accessibility", &[]).await;
}

/// What a pass has used of the demo: each notice is paid once.
#[derive(Default)]
struct Used {
    iupds: std::collections::HashSet<String>,
}

/// A payable notice of the demo's Ente `ente` (its number, amount in
/// cents), of a position no earlier step has touched.
fn fresh_notice(demo: &Demo, used: &mut Used, ente: usize) -> (String, i64) {
    let notices = demo.ente(ente)["payable_notices"].as_array().unwrap();
    let n = notices
        .iter()
        .find(|n| {
            let iupd = n["iupd"].as_str().unwrap();
            // Installment plans have several numbers; a single notice is simpler.
            notices.iter().filter(|m| m["iupd"] == iupd).count() == 1 && !used.iupds.contains(iupd)
        })
        .expect("a payable demo notice left");
    used.iupds.insert(n["iupd"].as_str().unwrap().to_string());
    (
        n["notice_number"].as_str().unwrap().to_string(),
        n["amount_cents"].as_i64().unwrap(),
    )
}

/// The Italian amount, as pages and receipts print it: 1.234,56.
fn euro(cents: i64) -> String {
    incasso_core::Cents(cents).to_italian()
}

/// Chooses `value` in the select `css`: by keyboard, Tab to it and the
/// arrow keys (as a person does without opening the list).
async fn choose(browser: &Browser, drive: Drive, css: &str, value: &str) {
    let current = format!(
        "return document.querySelector({}).value",
        serde_json::to_string(css).unwrap()
    );
    match drive {
        Drive::Keyboard => {
            tab_to(browser, css).await;
            // Typing an option's text picks it (a closed list's type-ahead).
            let label = browser
                .execute(
                    "return [...document.querySelector(arguments[0]).options].find(o => o.value === arguments[1]).text",
                    vec![Value::String(css.into()), Value::String(value.into())],
                )
                .await;
            browser.press(label.as_str().unwrap()).await;
            for _ in 0..10 {
                if browser.execute(&current, vec![]).await == Value::String(value.into()) {
                    break;
                }
                browser.press(&ARROW_DOWN.to_string()).await;
            }
        }
        Drive::Pointer => {
            browser
                .execute(
                    "const s = document.querySelector(arguments[0]); s.value = arguments[1];
                     s.dispatchEvent(new Event('change', {bubbles: true}));",
                    vec![Value::String(css.into()), Value::String(value.into())],
                )
                .await;
        }
    }
    assert_eq!(
        browser.execute(&current, vec![]).await,
        Value::String(value.into()),
        "{css} set to {value}"
    );
}

/// Looks a notice up from the portal of Ente `portal` (the creditor
/// chosen in the form), and waits for its page.
async fn look_up(
    browser: &Browser,
    drive: Drive,
    demo: &Demo,
    portal: usize,
    ente: usize,
    nav: &str,
) {
    browser
        .goto(&format!("{}/avviso", demo.portal(portal)))
        .await;
    wait_text(browser, "the notice search", "Codice avviso").await;
    fill(browser, drive, "#codice", nav).await;
    if browser.try_find("select#ente").await.is_some() {
        choose(browser, drive, "select#ente", &demo.fc(ente)).await;
    }
    activate(browser, drive, "#cerca-avviso button[type=submit]").await;
    browser
        .wait_for(
            "the notice's page",
            "document.readyState === 'complete' && !!document.querySelector('#avviso[data-status=PAYABLE]')",
        )
        .await;
}

/// On the simulator's Checkout page, pays (as the person would, by
/// keyboard or pointer), and waits for the portal's outcome page.
async fn pay_at_checkout(browser: &Browser, drive: Drive, screens: &mut Screens, name: &str) {
    browser
        .wait_for(
            "pagoPA Checkout",
            "document.readyState === 'complete' && location.pathname.startsWith('/checkout/carts/') && !!document.querySelector('#pay')",
        )
        .await;
    screens.save(browser, &format!("{name}-checkout")).await;
    activate(browser, drive, "#pay").await;
    browser
        .wait_for(
            "the outcome page",
            "document.readyState === 'complete' && !!document.querySelector('#esito')",
        )
        .await;
    let state = browser
        .execute(
            "return document.querySelector('#esito').dataset.status",
            vec![],
        )
        .await;
    assert_eq!(state, "PAID", "{name}: {}", body_text(browser).await);
    check_page(browser, screens, &format!("{name}-outcome"), &[]).await;
}

/// The messages the demo's SMTP server received.
async fn mail(demo: &Demo) -> Vec<Value> {
    let url = demo.json["mail_url"]
        .as_str()
        .expect("mail_url in demo.json");
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// Waits for the receipt mailed to `to`, and answers its PDF's text.
async fn receipt_mailed(demo: &Demo, to: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let found = mail(demo).await.into_iter().find(|m| {
            m["to"]
                .as_array()
                .is_some_and(|t| t.iter().any(|a| a == to))
        });
        if let Some(m) = found {
            let pdf = m["attachments"]
                .as_array()
                .and_then(|a| {
                    a.iter().find(|a| {
                        a["content_type"]
                            .as_str()
                            .unwrap_or_default()
                            .contains("pdf")
                    })
                })
                .unwrap_or_else(|| panic!("the receipt mail has no PDF: {m}"));
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(pdf["base64"].as_str().unwrap())
                .unwrap();
            assert!(bytes.starts_with(b"%PDF"), "the attachment is a PDF");
            return pdf_text(&bytes);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no receipt mailed to {to} in 30 s: {:?}",
            mail(demo).await
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The text of a PDF (poppler's pdftotext, which scripts/test.sh installs).
fn pdf_text(bytes: &[u8]) -> String {
    let dir = temp_dir("pdf");
    let file = dir.join("doc.pdf");
    std::fs::write(&file, bytes).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-layout"])
        .arg(&file)
        .arg("-")
        .output()
        .expect("pdftotext (Debian package poppler-utils)");
    assert!(out.status.success(), "pdftotext failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `application/x-www-form-urlencoded`'s escaping of one name or value.
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Posts a form of the current page with a plain HTTP client carrying the
/// browser's cookies (a download the browser would save to disk).
async fn download(browser: &Browser, form_css: &str) -> Vec<u8> {
    let (action, fields) = {
        let v = browser
            .execute(
                "const f = document.querySelector(arguments[0]);
                 return [f.action, [...new FormData(f)].map(([k, v]) => [k, String(v)])];",
                vec![Value::String(form_css.into())],
            )
            .await;
        (
            v[0].as_str().unwrap().to_string(),
            v[1].as_array()
                .unwrap()
                .iter()
                .map(|kv| {
                    (
                        kv[0].as_str().unwrap().to_string(),
                        kv[1].as_str().unwrap().to_string(),
                    )
                })
                .collect::<Vec<_>>(),
        )
    };
    let resp = reqwest::Client::new()
        .post(&action)
        .header("cookie", browser.cookie_header().await)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            fields
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect::<Vec<_>>()
                .join("&"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{action}");
    resp.bytes().await.unwrap().to_vec()
}

/// Step 1: a notice found by its number (a wrong number first), its PDF, paid
/// through Checkout with an email for the receipt; the receipt mailed,
/// its PDF with the amount and the IUV. Answers the IUV and the debtor's
/// fiscal code printed on the receipt (for step 4).
async fn pay_one_notice(
    browser: &Browser,
    drive: Drive,
    screens: &mut Screens,
    demo: &Demo,
    used: &mut Used,
    email: &str,
) -> (String, String) {
    let (nav, cents) = fresh_notice(demo, used, 0);
    // From the home page, by its link.
    browser.goto(&format!("{}/", demo.portal(0))).await;
    follow(browser, drive, "Paga un avviso").await;
    wait_text(browser, "the notice search", "Codice avviso").await;
    check_page(browser, screens, "notice-form", &[]).await;
    // A number that cannot be one: the message by the field.
    fill(browser, drive, "#codice", "12345").await;
    activate(browser, drive, "#cerca-avviso button[type=submit]").await;
    browser
        .wait_for(
            "the refusal",
            "document.readyState === 'complete' && !!document.querySelector('#codice-errore')",
        )
        .await;
    check_page(browser, screens, "notice-form-error", REFUSED).await;
    look_up(browser, drive, demo, 0, 0, &nav).await;
    let page = body_text(browser).await;
    assert!(
        page.contains(&format!("{} €", euro(cents))),
        "the amount: {page}"
    );
    check_page(browser, screens, "notice-found", &[]).await;
    let pdf = download(browser, "form[action$='/avviso/pdf']").await;
    assert!(pdf.starts_with(b"%PDF"), "the notice PDF");
    assert!(
        pdf_text(&pdf).contains(&euro(cents)),
        "the notice PDF's amount"
    );
    // Pay now: the cart, the one summary before paying.
    activate(browser, drive, "#paga-ora").await;
    wait_text(browser, "the cart", "Riepilogo").await;
    check_page(browser, screens, "cart-one", &[]).await;
    // An address that isn't one: the message by the field.
    fill(browser, drive, "#email", "non-un-indirizzo").await;
    activate(browser, drive, "#conferma").await;
    browser
        .wait_for(
            "the email refused",
            "document.readyState === 'complete' && !!document.querySelector('#email-errore')",
        )
        .await;
    check_page(browser, screens, "cart-email-error", REFUSED).await;
    fill(browser, drive, "#email", email).await;
    activate(browser, drive, "#conferma").await;
    pay_at_checkout(browser, drive, screens, "one-notice").await;
    let text = receipt_mailed(demo, email).await;
    let iuv = &nav[1..];
    assert!(
        text.contains(&euro(cents)),
        "the receipt's amount {}: {text}",
        euro(cents)
    );
    assert!(text.contains(iuv), "the receipt's IUV {iuv}: {text}");
    let debtor = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| {
            w.len() == 16
                && w.chars().any(|c| c.is_ascii_digit())
                && w.chars().take(6).all(|c| c.is_ascii_uppercase())
        })
        .unwrap_or_else(|| panic!("no fiscal code on the receipt: {text}"))
        .to_string();
    (iuv.to_string(), debtor)
}

/// Step 2: a cart of three notices of two Enti, paid at once.
async fn pay_a_cart(
    browser: &Browser,
    drive: Drive,
    screens: &mut Screens,
    demo: &Demo,
    used: &mut Used,
) {
    let picks = [
        (0, fresh_notice(demo, used, 0)),
        (1, fresh_notice(demo, used, 1)),
        (0, fresh_notice(demo, used, 0)),
    ];
    for (i, (ente, (nav, _))) in picks.iter().enumerate() {
        look_up(browser, drive, demo, 0, *ente, nav).await;
        activate(browser, drive, "#aggiungi").await;
        browser
            .wait_for(
                "added to the cart",
                "document.readyState === 'complete' && !!document.querySelector('#aggiunto')",
            )
            .await;
        if i == 0 {
            check_page(browser, screens, "cart-added", &[]).await;
        }
    }
    follow(browser, drive, "vai al carrello").await;
    wait_text(browser, "the cart", "Riepilogo").await;
    let listed = browser
        .execute(
            "return [...document.querySelectorAll('[data-notice]')].map(e => e.dataset.notice)",
            vec![],
        )
        .await;
    for (_, (nav, _)) in &picks {
        assert!(
            listed.as_array().unwrap().iter().any(|n| n == nav.as_str()),
            "{nav} in the cart: {listed}"
        );
    }
    let total: i64 = picks.iter().map(|(_, (_, c))| c).sum();
    assert!(
        body_text(browser)
            .await
            .contains(&format!("{} €", euro(total))),
        "the total"
    );
    check_page(browser, screens, "cart-three", &[]).await;
    activate(browser, drive, "#conferma").await;
    pay_at_checkout(browser, drive, screens, "cart").await;
    let paid = browser
        .execute("return [...document.querySelectorAll('[data-notice]')].filter(e => e.dataset.paid === 'true').length", vec![])
        .await;
    assert_eq!(paid, 3, "three notices paid");
}

/// Step 4: a receipt found by IUV and fiscal code (a wrong fiscal code first).
async fn find_a_receipt(
    browser: &Browser,
    drive: Drive,
    screens: &mut Screens,
    demo: &Demo,
    iuv: &str,
    fiscal_code: &str,
) {
    browser.goto(&format!("{}/", demo.portal(0))).await;
    follow(browser, drive, "Cerca una ricevuta").await;
    wait_text(browser, "the receipt search", "IUV").await;
    check_page(browser, screens, "receipt-form", &[]).await;
    fill(browser, drive, "#iuv", iuv).await;
    fill(browser, drive, "#codice_fiscale", "NONVALIDO").await;
    activate(browser, drive, "#cerca-ricevuta button[type=submit]").await;
    browser
        .wait_for(
            "the refusal",
            "document.readyState === 'complete' && !!document.querySelector('#errori')",
        )
        .await;
    check_page(browser, screens, "receipt-form-error", REFUSED).await;
    fill(browser, drive, "#codice_fiscale", fiscal_code).await;
    activate(browser, drive, "#cerca-ricevuta button[type=submit]").await;
    browser
        .wait_for(
            "the receipt",
            "document.readyState === 'complete' && !!document.querySelector('#ricevuta')",
        )
        .await;
    check_page(browser, screens, "receipt-found", &[]).await;
    let pdf = download(browser, "form[action$='/ricevuta/pdf']").await;
    assert!(pdf_text(&pdf).contains(iuv), "the receipt PDF's IUV");
}

/// The demo's citizen: the test identity that signs in as no operator.
fn citizen(demo: &Demo) -> (String, String) {
    let c = demo.json["test_identities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["operator"].is_null())
        .expect("a citizen among demo.json's test identities");
    (
        c["fiscal_code"].as_str().unwrap().to_string(),
        c["name"].as_str().unwrap().to_string(),
    )
}

/// Step 3: a spontaneous payment through its form: sent empty first (every
/// required field named), then filled, the summary, Checkout.
async fn pay_a_service(
    browser: &Browser,
    drive: Drive,
    screens: &mut Screens,
    demo: &Demo,
    email: &str,
) {
    browser.goto(&format!("{}/", demo.portal(0))).await;
    follow(browser, drive, "Scegli il servizio").await;
    wait_text(browser, "the services", "Paga un servizio").await;
    check_page(browser, screens, "services", &[]).await;
    follow(browser, drive, "Compila il modulo").await;
    browser
        .wait_for(
            "the form",
            "document.readyState === 'complete' && !!document.querySelector('#modulo')",
        )
        .await;
    check_page(browser, screens, "service-form", &[]).await;
    activate(browser, drive, "#avanti").await;
    browser
        .wait_for(
            "the refusal",
            "document.readyState === 'complete' && !!document.querySelector('#errori')",
        )
        .await;
    check_page(browser, screens, "service-form-errors", REFUSED).await;
    // Each field as a person fills it in.
    let (fc, name) = citizen(demo);
    let fields = browser
        .execute(
            "return [...document.querySelectorAll('#modulo input, #modulo select')]
               .filter(e => e.type !== 'hidden' && !e.readOnly)
               .map(e => ({id: e.id, tag: e.tagName.toLowerCase(), type: e.type, name: e.name,
                           auto: e.getAttribute('autocomplete') || '', max: e.maxLength,
                           options: e.tagName === 'SELECT' ? [...e.options].map(o => o.value).filter(v => v) : []}));",
            vec![],
        )
        .await;
    let mut radio_done = false;
    for f in fields.as_array().unwrap() {
        let css = format!("#{}", f["id"].as_str().unwrap());
        let (kind, field) = (f["type"].as_str().unwrap(), f["name"].as_str().unwrap());
        if f["tag"] == "select" {
            let option = f["options"][0].as_str().expect("a choice");
            choose(browser, drive, &css, option).await;
        } else if kind == "radio" {
            if !radio_done {
                activate(browser, drive, &css).await;
                radio_done = true;
            }
        } else if kind == "email" {
            fill(browser, drive, &css, email).await;
        } else if f["max"] == 16 {
            fill(browser, drive, &css, &fc).await;
        } else if f["auto"] == "name" {
            fill(browser, drive, &css, &name).await;
        } else if field == "pratica" {
            fill(browser, drive, &css, "AB1234").await;
        } else if kind == "text" || kind == "number" {
            let value = if field.contains("amount") || field.contains("importo") {
                "25,00"
            } else {
                "Prova"
            };
            fill(browser, drive, &css, value).await;
        }
    }
    check_page(browser, screens, "service-form-filled", &[]).await;
    activate(browser, drive, "#avanti").await;
    browser
        .wait_for(
            "the summary",
            "document.readyState === 'complete' && !!document.querySelector('#riepilogo')",
        )
        .await;
    check_page(browser, screens, "service-summary", &[]).await;
    activate(browser, drive, "#conferma").await;
    pay_at_checkout(browser, drive, screens, "service").await;
}

/// Step 5: the personal area after signing in with the citizen's test
/// identity: their positions at both Enti.
async fn personal_area(browser: &Browser, drive: Drive, screens: &mut Screens, demo: &Demo) {
    let (fc, name) = citizen(demo);
    browser.goto(&format!("{}/", demo.portal(0))).await;
    follow(browser, drive, "Entra con SPID o CIE").await;
    browser
        .wait_for("the provider's page", "document.readyState === 'complete' && !!document.querySelector('input[name=identity]')")
        .await;
    screens.save(browser, "spid-provider").await;
    pick_radio(browser, drive, "identity", &fc).await;
    activate(browser, drive, "button[value=entra]").await;
    browser
        .wait_for(
            "the personal area",
            "document.readyState === 'complete' && location.pathname.endsWith('/area-personale')",
        )
        .await;
    let text = body_text(browser).await;
    assert!(
        text.contains(&name) && text.contains(&fc),
        "the citizen: {text}"
    );
    for ente in [0, 1] {
        let ente_name = demo.ente(ente)["name"].as_str().unwrap();
        assert!(
            text.contains(ente_name),
            "a position at {ente_name}: {text}"
        );
    }
    check_page(browser, screens, "personal-area", &[]).await;
}

/// Every flow of the issue, driven one way on one screen.
async fn citizen_pass(
    browser: &Browser,
    drive: Drive,
    label: &'static str,
    demo: &Demo,
    used: &mut Used,
) {
    let mut screens = Screens::new(label);
    eprintln!("{label}: screenshots in {}", screens.dir.display());
    home(browser, drive, &mut screens, demo, 0).await;
    let email = format!("{}@example.it", label.replace('-', "."));
    let (iuv, debtor) = pay_one_notice(browser, drive, &mut screens, demo, used, &email).await;
    pay_a_cart(browser, drive, &mut screens, demo, used).await;
    find_a_receipt(browser, drive, &mut screens, demo, &iuv, &debtor).await;
    pay_a_service(browser, drive, &mut screens, demo, &email).await;
    personal_area(browser, drive, &mut screens, demo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_citizen_finds_pays_carts_pays_a_service_finds_a_receipt_and_signs_in() {
    let Some(browser) = Browser::start(Screen::Desktop(1280, 900)).await else {
        return;
    };
    let demo = Demo::start("citizen");
    // By keyboard alone, on a desktop.
    let mut used = Used::default();
    citizen_pass(
        &browser,
        Drive::Keyboard,
        "citizen-keyboard",
        &demo,
        &mut used,
    )
    .await;
    // The text at 200 %.
    let mut screens = Screens::new("citizen-zoom");
    let portal = demo.portal(0);
    let pages = [
        ("home", format!("{portal}/")),
        ("notice-form", format!("{portal}/avviso")),
        ("cart", format!("{portal}/carrello")),
        ("services", format!("{portal}/servizi")),
        ("receipt-form", format!("{portal}/ricevuta")),
        ("accessibility", format!("{portal}/accessibilita")),
    ];
    check_text_zoom(&browser, &mut screens, &pages).await;
    browser.quit().await;

    // On a phone, by touch.
    let Some(phone) = Browser::start(Screen::Phone(375, 740)).await else {
        return;
    };
    citizen_pass(&phone, Drive::Pointer, "citizen-phone", &demo, &mut used).await;
    phone.quit().await;
    let _ = std::fs::remove_dir_all(&demo.dir);
}
