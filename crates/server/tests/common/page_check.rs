//! What every page of a browser test is checked for (axe-core, the
//! console, sideways overflow), and where its screenshots go. Include after
//! `common/browser.rs` (as `browser`) with
//! `#[path = "common/page_check.rs"] mod page_check;`.

use super::browser::{self, Browser};
use std::path::PathBuf;

/// Where the screenshots go: `INCASSO_SCREENSHOT_DIR`, else a folder of
/// this run under the temporary directory, kept after the test.
pub struct Screens {
    pub dir: PathBuf,
    pub label: &'static str,
    count: usize,
}

impl Screens {
    pub fn new(label: &'static str) -> Screens {
        let dir = std::env::var_os("INCASSO_SCREENSHOT_DIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                std::env::temp_dir().join(format!("incasso-backoffice-{}", std::process::id()))
            });
        std::fs::create_dir_all(&dir).unwrap();
        Screens {
            dir,
            label,
            count: 0,
        }
    }

    pub async fn save(&mut self, browser: &Browser, name: &str) {
        self.count += 1;
        let file = self
            .dir
            .join(format!("{}-{:02}-{name}.png", self.label, self.count));
        let png = browser.screenshot().await;
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(&file, png).unwrap();
        eprintln!("screenshot: {}", file.display());
    }
}

/// The checks of every page: axe-core finds no violation, the console
/// holds no error (a resource refused by the CSP or missing would be one)
/// but the `expected` ones (parts of their messages), nothing overflows
/// sideways in a narrow window; then a screenshot.
pub async fn check_page(browser: &Browser, screens: &mut Screens, name: &str, expected: &[&str]) {
    browser
        .wait_for("the page to load", "document.readyState === 'complete'")
        .await;
    // The fonts, so that axe measures contrast and the screenshot shows
    // the text as people see it. Bounded: a wait that never ends would
    // hold the test a minute, until WebDriver's script timeout.
    let fonts = browser
        .try_execute_async(
            "const done = arguments[arguments.length - 1];
             const timer = setTimeout(() => done('fonts not ready in 10 s'), 10000);
             document.fonts.ready.then(() => { clearTimeout(timer); done(document.fonts.status); });",
            vec![],
        )
        .await;
    if !matches!(&fonts, Ok(v) if v == "loaded") {
        eprintln!(
            "{} {name}: fonts {fonts:?} at {}",
            screens.label,
            browser.current_url().await
        );
        browser
            .wait_for("the page to load", "document.readyState === 'complete'")
            .await;
    }
    let report = browser.axe().await;
    eprintln!(
        "{} {name}: axe-core {}: {} rules passed, {} violations, {} to review{}",
        screens.label,
        report.version,
        report.passes,
        report.violations.len(),
        report.incomplete.len(),
        report
            .incomplete
            .iter()
            .map(|r| format!(" [{}: {} node(s)]", r.id, r.nodes.len()))
            .collect::<String>()
    );
    if !report.incomplete.is_empty() {
        eprintln!(
            "{}",
            browser::AxeReport::describe_first(&report.incomplete, 3)
        );
    }
    report.assert_clean(&format!("{} {name}", screens.label));
    // Where a background image (an alert's icon, beside the text) or the
    // SVG around a chart's text kept axe from measuring the contrast,
    // measure text against background colour.
    for rule in report
        .incomplete
        .iter()
        .filter(|r| r.id == "color-contrast")
    {
        for node in &rule.nodes {
            let chart_text = node.summary.contains("image node") && node.html.starts_with("<text");
            if (node.summary.contains("background image") || chart_text) && node.target.len() == 1 {
                let ratio = browser.contrast(&node.target[0]).await;
                assert!(
                    ratio >= 4.5,
                    "{} {name}: {} has a contrast of {ratio:.2}:1, under 4.5:1",
                    screens.label,
                    node.target[0]
                );
            }
        }
    }

    let widths = browser
        .execute(
            "return [document.documentElement.scrollWidth, innerWidth]",
            vec![],
        )
        .await;
    assert!(
        widths[0].as_u64() <= widths[1].as_u64(),
        "{} {name}: the page is wider than the window (scrollWidth, innerWidth = {widths})",
        screens.label
    );

    let errors: Vec<_> = browser
        .console()
        .await
        .into_iter()
        .filter(|e| e["level"] == "SEVERE")
        .filter(|e| {
            let message = e["message"].as_str().unwrap_or_default();
            !expected.iter().any(|x| message.contains(x))
        })
        .collect();
    assert!(
        errors.is_empty(),
        "{} {name}: errors in the browser's console: {errors:#?}",
        screens.label
    );
    screens.save(browser, name).await;
}
