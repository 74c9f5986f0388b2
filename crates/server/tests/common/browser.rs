//! A small WebDriver client for the portals' browser tests: Debian's
//! `chromedriver` started on a free loopback port as a child process
//! (ended when the [`Browser`] is dropped), driving a headless Chromium of
//! a given window size; navigation, the current URL and page source,
//! elements found by CSS, typing, clicks, key presses through the Actions
//! API, `document.activeElement`, scripts (sync and async), screenshots,
//! the browser's console, and axe-core's accessibility check
//! ([`Browser::axe`], the copy vendored by `scripts/vendor-axe-core.sh` in
//! `tests/data/axe/`).
//!
//! Built on the dev-dependencies already there (reqwest, serde_json,
//! tokio, base64) rather than a WebDriver crate: the protocol's dozen calls
//! used here are plain JSON over HTTP.
//!
//! Without Chromium or chromedriver, [`Browser::start`] answers `None`
//! after a note (the caller skips), or panics under
//! `INCASSO_REQUIRE_TOOLS=1` (set by `scripts/test.sh`, which installs both).
//! `INCASSO_CHROMIUM` and `INCASSO_CHROMEDRIVER` name other executables.

use base64::Engine;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// WebDriver's key codes (Actions API and element send keys).
pub const TAB: char = '\u{E004}';
pub const ENTER: char = '\u{E007}';
pub const SHIFT: char = '\u{E008}';
pub const ARROW_RIGHT: char = '\u{E014}';
pub const CONTROL: char = '\u{E009}';

/// The key of an element reference in WebDriver's JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The WCAG levels the portals promise (Linee guida AgID: WCAG 2.1 AA).
pub const AXE_TAGS: [&str; 4] = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

fn executable(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

/// An element of the page, as WebDriver names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element(pub String);

/// What has the keyboard's focus (`document.activeElement`).
#[derive(Debug, Clone)]
pub struct Focus {
    /// Lower-case tag name; `body` when nothing in particular has focus.
    pub tag: String,
    /// Its explicit `role`, if any.
    pub role: String,
    pub id: String,
    pub name: String,
    /// Its visible text, or its value for a field.
    pub text: String,
    /// Its box has an area and lies (at least partly) in the window.
    pub visible: bool,
    /// A focus indicator is drawn: an outline or a box shadow.
    pub indicated: bool,
    /// The computed outline and box shadow, to explain a failure.
    pub style: String,
    /// Its box, the window's height and the page's scroll, to explain a
    /// failure of `visible`.
    pub place: String,
}

impl Focus {
    pub fn is_body(&self) -> bool {
        self.tag == "body" || self.tag == "html" || self.tag.is_empty()
    }
}

impl std::fmt::Display for Focus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{}", self.tag)?;
        if !self.role.is_empty() {
            write!(f, " role={}", self.role)?;
        }
        if !self.id.is_empty() {
            write!(f, " id={}", self.id)?;
        }
        if !self.name.is_empty() {
            write!(f, " name={}", self.name)?;
        }
        write!(f, ">")?;
        // Its first line, and not too much of it (a table is all text).
        let first = self.text.lines().next().unwrap_or_default();
        let short: String = first.chars().take(40).collect();
        if !short.is_empty() {
            let more = if short != self.text { "…" } else { "" };
            write!(f, " {short:?}{more}")?;
        }
        Ok(())
    }
}

/// An error answered by chromedriver (or the way to it).
#[derive(Debug)]
pub struct WebDriverError {
    pub error: String,
    pub message: String,
}

impl std::fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.message)
    }
}

/// A headless Chromium driven through chromedriver.
pub struct Browser {
    driver: Child,
    port: u16,
    http: reqwest::Client,
    session: String,
    ended: bool,
    pub screen: Screen,
    /// Chromium's own profile and chromedriver's log, removed at drop.
    profile: tempfile::TempDir,
}

/// Where the pages are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// A desktop window of this width and height (`--window-size`; the
    /// page gets the width, and the height less Chromium's frame).
    Desktop(u32, u32),
    /// A phone whose viewport is this many CSS pixels wide and high.
    Phone(u32, u32),
}

impl Screen {
    pub fn size(self) -> (u32, u32) {
        match self {
            Screen::Desktop(w, h) | Screen::Phone(w, h) => (w, h),
        }
    }
}

impl Browser {
    /// chromedriver and a headless Chromium showing pages on `screen`;
    /// `None` (after a note) when either is missing, unless
    /// `INCASSO_REQUIRE_TOOLS=1`.
    pub async fn start(screen: Screen) -> Option<Browser> {
        let chromium = executable("INCASSO_CHROMIUM", "/usr/bin/chromium");
        let chromedriver = executable("INCASSO_CHROMEDRIVER", "/usr/bin/chromedriver");
        let missing = match Command::new(&chromedriver).arg("--version").output() {
            Ok(out) if out.status.success() => {
                (!chromium.is_file()).then(|| format!("{} not found", chromium.display()))
            }
            Ok(out) => Some(format!(
                "{} --version failed: {}",
                chromedriver.display(),
                String::from_utf8_lossy(&out.stderr)
            )),
            Err(e) => Some(format!("{}: {e}", chromedriver.display())),
        };
        if let Some(why) = missing {
            if std::env::var("INCASSO_REQUIRE_TOOLS").is_ok_and(|v| v == "1") {
                panic!(
                    "Chromium and chromedriver are needed (Debian packages chromium and \
                     chromium-driver; scripts/test.sh installs them): {why}"
                );
            }
            eprintln!(
                "note: {why}; the browser tests are skipped (Debian packages chromium and \
                 chromium-driver; scripts/test.sh installs them)"
            );
            return None;
        }

        // reqwest is built without a TLS provider of its own (plain HTTP to
        // chromedriver needs none, but a client cannot be built without one).
        incasso_pagopa::connector::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let (width, height) = screen.size();
        // Chromium sometimes fails to come up on a loaded machine
        // ("DevToolsActivePort file doesn't exist": it did not answer
        // chromedriver within a minute, or crashed starting). A fresh
        // chromedriver, profile and Chromium are tried again before the
        // test is failed, with chromedriver's log to say why.
        let mut failures = Vec::new();
        for attempt in 1..=3 {
            let profile = tempfile::tempdir().expect("a profile directory");
            let log = profile.path().join("chromedriver.log");
            let (driver, port) = start_driver(&chromedriver, &log, &http).await;
            let mut browser = Browser {
                driver,
                port,
                http: http.clone(),
                session: String::new(),
                ended: true,
                screen,
                profile,
            };
            let mut chrome_options = json!({
                "binary": chromium.to_string_lossy(),
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    // Containers often have a small /dev/shm.
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-extensions",
                    "--disable-background-networking",
                    "--disable-crash-reporter",
                    format!("--user-data-dir={}", browser.profile.path().join("chromium").display()),
                    format!("--window-size={width},{height}"),
                ],
            });
            if let Screen::Phone(..) = screen {
                // Chromium keeps a window at least 500 px wide: the phone's
                // viewport is emulated (a phone's layout, pixel ratio and touch).
                chrome_options["mobileEmulation"] = json!({
                    "deviceMetrics": {
                        "width": width,
                        "height": height,
                        "pixelRatio": 3.0,
                        "mobile": true,
                        "touch": true,
                    },
                });
            }
            let capabilities = json!({
                "capabilities": {
                    "alwaysMatch": {
                        "browserName": "chrome",
                        "pageLoadStrategy": "normal",
                        "timeouts": {"script": 60_000, "pageLoad": 60_000, "implicit": 0},
                        "goog:loggingPrefs": {"browser": "ALL"},
                        "goog:chromeOptions": chrome_options,
                    },
                },
            });
            match browser
                .call(reqwest::Method::POST, "/session", Some(capabilities))
                .await
            {
                Ok(answer) => {
                    browser.session = answer["sessionId"]
                        .as_str()
                        .expect("a session id")
                        .to_string();
                    browser.ended = false;
                    return Some(browser);
                }
                Err(e) => {
                    let driver_log = std::fs::read_to_string(&log).unwrap_or_default();
                    let tail: Vec<&str> = driver_log.lines().rev().take(40).collect();
                    let tail: Vec<&str> = tail.into_iter().rev().collect();
                    eprintln!(
                        "note: attempt {attempt} to start Chromium failed: {e}\n\
                         chromedriver's log (last lines):\n{}",
                        tail.join("\n")
                    );
                    failures.push(e.to_string());
                    // Dropping the browser ends chromedriver and whatever
                    // Chromium it left, then removes the profile.
                }
            }
        }
        panic!(
            "chromedriver could not start Chromium in 3 attempts: {}",
            failures.join(" | ")
        );
    }

    /// `method` on the driver's `path` (whole, from `/session`), its `value`.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WebDriverError> {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let mut req = self.http.request(method.clone(), &url);
        // WebDriver wants a JSON body on every POST, `{}` when empty.
        if method == reqwest::Method::POST {
            req = req.json(&body.unwrap_or_else(|| json!({})));
        }
        let resp = req.send().await.map_err(|e| WebDriverError {
            error: "transport".into(),
            message: format!("{method} {path}: {e}"),
        })?;
        let status = resp.status();
        let answer: Value = resp.json().await.map_err(|e| WebDriverError {
            error: "transport".into(),
            message: format!("{method} {path}: {status}, not JSON: {e}"),
        })?;
        let value = answer.get("value").cloned().unwrap_or(Value::Null);
        if status.is_success() {
            Ok(value)
        } else {
            Err(WebDriverError {
                error: value["error"].as_str().unwrap_or("unknown").to_string(),
                message: format!(
                    "{method} {path}: {}",
                    value["message"].as_str().unwrap_or_default()
                ),
            })
        }
    }

    /// A command of this session (`path` after `/session/{id}`).
    async fn session_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WebDriverError> {
        self.call(method, &format!("/session/{}{path}", self.session), body)
            .await
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.session_call(reqwest::Method::POST, path, Some(body))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    async fn get(&self, path: &str) -> Value {
        self.session_call(reqwest::Method::GET, path, None)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Forgets every cookie of the current site (a sign-out without the
    /// form, to sign in as somebody else).
    pub async fn delete_cookies(&self) {
        self.session_call(reqwest::Method::DELETE, "/cookie", None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// The cookies of the current site, as `name=value; ...` (for a plain
    /// HTTP client to download what the signed-in page links to).
    pub async fn cookie_header(&self) -> String {
        let all = self.get("/cookie").await;
        all.as_array()
            .map(|cookies| {
                cookies
                    .iter()
                    .map(|c| {
                        format!(
                            "{}={}",
                            c["name"].as_str().unwrap_or_default(),
                            c["value"].as_str().unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    pub async fn current_url(&self) -> String {
        self.get("/url")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The path (and query) of the current URL.
    pub async fn current_path(&self) -> String {
        self.execute(
            "return location.pathname + location.search + location.hash",
            vec![],
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    pub async fn source(&self) -> String {
        self.get("/source")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub async fn title(&self) -> String {
        self.get("/title")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn element_of(value: &Value) -> Element {
        Element(
            value[ELEMENT_KEY]
                .as_str()
                .unwrap_or_else(|| panic!("not an element: {value}"))
                .to_string(),
        )
    }

    /// The first element matching `css`, if any.
    pub async fn try_find(&self, css: &str) -> Option<Element> {
        match self
            .session_call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await
        {
            Ok(v) => Some(Self::element_of(&v)),
            Err(e) if e.error == "no such element" => None,
            Err(e) => panic!("{e}"),
        }
    }

    /// The first element matching `css`; panics with the page if none.
    pub async fn find(&self, css: &str) -> Element {
        match self.try_find(css).await {
            Some(e) => e,
            None => panic!(
                "no element {css} at {}:\n{}",
                self.current_url().await,
                self.source().await
            ),
        }
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.post("/elements", json!({"using": "css selector", "value": css}))
            .await
            .as_array()
            .map(|a| a.iter().map(Self::element_of).collect())
            .unwrap_or_default()
    }

    /// Types `text` into `element` (WebDriver's element send keys: focuses
    /// it if it has not the focus already).
    pub async fn send_keys(&self, element: &Element, text: &str) {
        self.post(
            &format!("/element/{}/value", element.0),
            json!({ "text": text }),
        )
        .await;
    }

    pub async fn click(&self, element: &Element) {
        self.post(&format!("/element/{}/click", element.0), json!({}))
            .await;
    }

    /// The rendered text of `element`.
    pub async fn text(&self, element: &Element) -> String {
        self.get(&format!("/element/{}/text", element.0))
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// A DOM property of `element` (`value`, `id`...).
    pub async fn property(&self, element: &Element, name: &str) -> Value {
        self.get(&format!("/element/{}/property/{name}", element.0))
            .await
    }

    /// Presses and releases each key of `keys` in turn, through the
    /// Actions API, on whatever has the focus: the keyboard alone.
    /// [`TAB`], [`ENTER`] and other WebDriver key codes are keys too.
    pub async fn press(&self, keys: &str) {
        let actions: Vec<Value> = keys
            .chars()
            .flat_map(|k| {
                [
                    json!({"type": "keyDown", "value": k.to_string()}),
                    json!({"type": "keyUp", "value": k.to_string()}),
                ]
            })
            .collect();
        self.post(
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        )
        .await;
    }

    /// Ctrl+`key` (Ctrl+A selects all of a field's text, to type over it).
    pub async fn press_ctrl(&self, key: char) {
        let actions = json!([
            {"type": "keyDown", "value": CONTROL.to_string()},
            {"type": "keyDown", "value": key.to_string()},
            {"type": "keyUp", "value": key.to_string()},
            {"type": "keyUp", "value": CONTROL.to_string()},
        ]);
        self.post(
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        )
        .await;
    }

    /// Shift+Tab: the focus one step back.
    pub async fn press_shift_tab(&self) {
        let actions = json!([
            {"type": "keyDown", "value": SHIFT.to_string()},
            {"type": "keyDown", "value": TAB.to_string()},
            {"type": "keyUp", "value": TAB.to_string()},
            {"type": "keyUp", "value": SHIFT.to_string()},
        ]);
        self.post(
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        )
        .await;
    }

    /// The element that has the focus (WebDriver's active element).
    pub async fn active_element(&self) -> Element {
        Self::element_of(&self.get("/element/active").await)
    }

    /// Tabs until the element with `id` has the focus (at most `limit`
    /// times), and waits until it is in view (Bootstrap scrolls smoothly):
    /// the elements met on the way, to explain a failure.
    pub async fn tab_to(&self, id: &str, limit: usize) -> Vec<String> {
        let mut met = Vec::new();
        for _ in 0..limit {
            let f = self.focused().await;
            if f.id == id {
                self.wait_for(
                    &format!("#{id} in view"),
                    "(() => { const r = document.activeElement.getBoundingClientRect(); \
                     return r.bottom > 0 && r.top < innerHeight; })()",
                )
                .await;
                return met;
            }
            met.push(format!("{f}"));
            self.press(&TAB.to_string()).await;
        }
        panic!("Tab never reached #{id}: {met:?}");
    }

    /// The element with the focus is `id` (on `page`, to explain a failure).
    pub async fn focus_is(&self, id: &str, page: &str) {
        let f = self.focused().await;
        assert_eq!(f.id, id, "{page}: the focus is on {f}");
    }

    /// Types `text` into the element with the focus.
    pub async fn type_text(&self, text: &str) {
        let e = self.active_element().await;
        self.send_keys(&e, text).await;
    }

    /// Signs `username` in to the back office at `base` by keyboard alone
    /// (the name typed, Tab to the password, Enter), and waits for its
    /// home page.
    pub async fn sign_in_by_keyboard(&self, base: &str, username: &str, password: &str) {
        self.goto(&format!("{base}/backoffice/login")).await;
        let user = self.find("#username").await;
        self.send_keys(&user, username).await;
        self.press(&TAB.to_string()).await;
        self.focus_is("password", "sign-in").await;
        self.type_text(password).await;
        self.press(&ENTER.to_string()).await;
        self.wait_for(
            "the home page",
            "location.pathname === '/backoffice/' && document.readyState === 'complete'",
        )
        .await;
    }

    /// Waits until the page at a path starting with `prefix` has loaded.
    pub async fn wait_path(&self, what: &str, prefix: &str) {
        self.wait_for(
            what,
            &format!(
                "location.pathname.startsWith('{prefix}') && document.readyState === 'complete'"
            ),
        )
        .await;
    }

    /// Waits until an element matches `css` and the page has loaded.
    pub async fn wait_for_element(&self, what: &str, css: &str) {
        self.wait_for(
            what,
            &format!(
                "document.querySelector('{css}') !== null && document.readyState === 'complete'"
            ),
        )
        .await;
    }

    /// What `document.activeElement` is, and how it shows its focus.
    pub async fn focused(&self) -> Focus {
        let v = self
            .execute(
                "const e = document.activeElement;
                 if (!e || e === document.body || e === document.documentElement) {
                   return {tag: 'body'};
                 }
                 const r = e.getBoundingClientRect();
                 const s = getComputedStyle(e);
                 const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
                 const shadow = s.boxShadow && s.boxShadow !== 'none';
                 return {
                   tag: e.tagName.toLowerCase(),
                   role: e.getAttribute('role') || '',
                   id: e.id || '',
                   name: e.getAttribute('name') || '',
                   text: ('value' in e && e.tagName !== 'BUTTON' ? e.value : e.innerText || '').trim(),
                   visible: r.width > 1 && r.height > 1 && r.bottom > 0 && r.right > 0
                     && r.top < innerHeight && r.left < innerWidth,
                   indicated: outline || !!shadow,
                   style: 'outline: ' + s.outlineStyle + ' ' + s.outlineWidth + ' ' + s.outlineColor
                     + '; box-shadow: ' + s.boxShadow,
                   place: 'box ' + Math.round(r.left) + ',' + Math.round(r.top) + ' '
                     + Math.round(r.width) + 'x' + Math.round(r.height) + ' in a window '
                     + innerWidth + 'x' + innerHeight + ' scrolled to ' + Math.round(scrollX)
                     + ',' + Math.round(scrollY),
                 };",
                vec![],
            )
            .await;
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        Focus {
            tag: s("tag"),
            role: s("role"),
            id: s("id"),
            name: s("name"),
            text: s("text"),
            visible: v["visible"].as_bool().unwrap_or(false),
            indicated: v["indicated"].as_bool().unwrap_or(false),
            style: s("style"),
            place: s("place"),
        }
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and
    /// answers what it returns.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.try_execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    pub async fn try_execute(
        &self,
        script: &str,
        args: Vec<Value>,
    ) -> Result<Value, WebDriverError> {
        self.run_script("/execute/sync", script, args).await
    }

    async fn run_script(
        &self,
        endpoint: &str,
        script: &str,
        args: Vec<Value>,
    ) -> Result<Value, WebDriverError> {
        self.session_call(
            reqwest::Method::POST,
            endpoint,
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Runs `script`, which ends by calling its last argument (the callback
    /// WebDriver adds after `args`) with its answer.
    pub async fn execute_async(&self, script: &str, args: Vec<Value>) -> Value {
        self.post("/execute/async", json!({"script": script, "args": args}))
            .await
    }

    pub async fn try_execute_async(
        &self,
        script: &str,
        args: Vec<Value>,
    ) -> Result<Value, WebDriverError> {
        self.run_script("/execute/async", script, args).await
    }

    /// Polls `expression` (JavaScript) until it is truthy, for up to ten
    /// seconds; answers its value. A page still loading is waited for.
    pub async fn wait_for(&self, what: &str, expression: &str) -> Value {
        let script = format!("return ({expression});");
        // Generous: CI's machine may be several times slower than a
        // developer's, and a wait that ends early fails nothing by itself.
        let patience = Duration::from_secs(30);
        let deadline = Instant::now() + patience;
        loop {
            let last = self.try_execute(&script, vec![]).await;
            match &last {
                Ok(v) if !matches!(v, Value::Null | Value::Bool(false)) && v != "" && v != 0 => {
                    return v.clone();
                }
                _ => {}
            }
            if Instant::now() > deadline {
                panic!(
                    "waited {} seconds for {what} ({expression}): {last:?} at {}",
                    patience.as_secs(),
                    self.current_url().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A PNG of the window as it is.
    pub async fn screenshot(&self) -> Vec<u8> {
        let b64 = self.get("/screenshot").await;
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("a base64 screenshot"))
            .expect("a screenshot in base64")
    }

    /// The browser console's entries since the last call (chromedriver's
    /// log endpoint): each `{level, message, ...}`.
    pub async fn console(&self) -> Vec<Value> {
        let got = self
            .session_call(
                reqwest::Method::POST,
                "/se/log",
                Some(json!({"type": "browser"})),
            )
            .await;
        got.ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    }

    /// axe-core run on the page (WCAG 2.1 A and AA rules, [`AXE_TAGS`]):
    /// the vendored `axe.min.js` injected with execute-script (unless the
    /// page has it already), then `axe.run` through an async script.
    ///
    /// A page that navigates between the injection and the run (a form's
    /// late answer) loses the script, and a run that never answers (seen
    /// only on a loaded CI machine) would hold the test until WebDriver's
    /// script timeout: either way the run is said on standard error and
    /// made again on the page as it is then, a few times at most.
    pub async fn axe(&self) -> AxeReport {
        let mut last = String::new();
        for _ in 0..3 {
            self.inject_axe().await;
            let answer = self
                .try_execute_async(
                    "const tags = arguments[0];
                     const done = arguments[arguments.length - 1];
                     if (typeof window.axe !== 'object') { done({again: 'axe-core gone'}); return; }
                     const timer = setTimeout(() => done({again: 'no answer in 20 s'}), 20000);
                     const nodes = (list) => list.map((n) => ({
                       target: n.target.map(String),
                       html: n.html,
                       summary: n.failureSummary || '',
                     }));
                     const rules = (list) => list.map((r) => ({
                       id: r.id, impact: r.impact || '', help: r.help, helpUrl: r.helpUrl,
                       nodes: nodes(r.nodes),
                     }));
                     axe.run(document, {runOnly: {type: 'tag', values: tags}})
                       .then((r) => { clearTimeout(timer); done({
                         version: r.testEngine.version,
                         url: r.url,
                         violations: rules(r.violations),
                         incomplete: rules(r.incomplete),
                         passes: r.passes.length,
                       }); })
                       .catch((e) => { clearTimeout(timer); done({error: String(e && e.stack || e)}); });",
                    vec![json!(AXE_TAGS)],
                )
                .await;
            last = match answer {
                Ok(a) if a.get("again").is_none() => {
                    if let Some(e) = a.get("error") {
                        panic!("axe.run failed on {}: {e}", self.current_url().await);
                    }
                    return serde_json::from_value(a).expect("axe's results");
                }
                Ok(a) => a["again"].to_string(),
                // The document unloaded under the script.
                Err(e) => e.to_string(),
            };
            eprintln!(
                "axe-core on {}: {last}; run again",
                self.current_url().await
            );
            self.wait_for("the page", "document.readyState === 'complete'")
                .await;
        }
        panic!(
            "axe-core did not finish in three runs on {}: {last}",
            self.current_url().await
        );
    }

    /// Injects the vendored `axe.min.js` unless the page has it already.
    async fn inject_axe(&self) {
        let present = self
            .execute("return typeof window.axe === 'object'", vec![])
            .await;
        if present == Value::Bool(true) {
            return;
        }
        // The server crate's copy, from its tests and from others'.
        let file =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../server/tests/data/axe/axe.min.js");
        let source = std::fs::read_to_string(&file).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (scripts/vendor-axe-core.sh vendors it)",
                file.display()
            )
        });
        self.execute(&source, vec![]).await;
        let injected = self
            .execute(
                "return typeof window.axe === 'object' ? axe.version : null",
                vec![],
            )
            .await;
        assert!(
            injected.is_string(),
            "axe-core did not load into {} (a Content-Security-Policy refusing \
             WebDriver's scripts?)",
            self.current_url().await
        );
    }

    /// The contrast ratio (WCAG 2.x, 1 to 21) of the text of the element
    /// `css` names against its background colour (its own, or the first
    /// ancestor's that is not transparent): what axe cannot measure when a
    /// background image (an alert's icon) lies behind the element.
    pub async fn contrast(&self, css: &str) -> f64 {
        self.execute(
            "const e = document.querySelector(arguments[0]);
             if (!e) { return null; }
             const rgba = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
             const lum = ([r, g, b]) => {
               const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
               return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
             };
             let bg = [255, 255, 255];
             for (let n = e; n; n = n.parentElement) {
               const c = rgba(getComputedStyle(n).backgroundColor);
               if (c.length === 3 || (c.length === 4 && c[3] === 1)) { bg = c.slice(0, 3); break; }
             }
             // An SVG chart's text is painted with its fill, not its colour.
             const style = getComputedStyle(e);
             const fg = rgba(e instanceof SVGElement ? style.fill : style.color).slice(0, 3);
             const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
             return (a + 0.05) / (b + 0.05);",
            vec![json!(css)],
        )
        .await
        .as_f64()
        .unwrap_or_else(|| panic!("no element {css} to measure"))
    }

    /// Ends the session (Chromium quits) and chromedriver.
    pub async fn quit(mut self) {
        if !self.ended {
            let _ = self
                .call(
                    reqwest::Method::DELETE,
                    &format!("/session/{}", self.session),
                    None,
                )
                .await;
            self.ended = true;
        }
        // Drop ends chromedriver.
    }
}

/// chromedriver on a free loopback port, once it says it is ready.
async fn start_driver(
    chromedriver: &PathBuf,
    log: &std::path::Path,
    http: &reqwest::Client,
) -> (Child, u16) {
    use std::os::unix::process::CommandExt;
    let mut last = String::new();
    for _ in 0..3 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            // Chromium's own messages too: why it did not start.
            .arg("--enable-chrome-logs")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so that dropping the browser can end
            // Chromium's processes with it even when chromedriver is gone.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", chromedriver.display()));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                // Most likely the port was taken between our look and its bind.
                last = format!("chromedriver exited ({status}) on port {port}");
                break;
            }
            let ready = http
                .get(format!("http://127.0.0.1:{port}/status"))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if let Ok(resp) = ready
                && let Ok(v) = resp.json::<Value>().await
                && v["value"]["ready"] == Value::Bool(true)
            {
                return (child, port);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                last = format!("chromedriver not ready after 30 s on port {port}");
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("{last}");
}

impl Drop for Browser {
    /// Ends the session if [`Browser::quit`] did not (a test that failed
    /// half-way), so Chromium does not outlive the test, then chromedriver.
    fn drop(&mut self) {
        if !self.ended {
            // A plain blocking request: Drop cannot wait on the runtime.
            let request = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\
                 Connection: close\r\n\r\n",
                self.session, self.port
            );
            if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
                if stream.write_all(request.as_bytes()).is_ok() {
                    let _ = stream.read_to_end(&mut Vec::new());
                }
            }
            self.ended = true;
        }
        // The whole group: chromedriver and any Chromium process it left.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// What [`Browser::axe`] found.
#[derive(Debug, serde::Deserialize)]
pub struct AxeReport {
    pub version: String,
    pub url: String,
    pub violations: Vec<AxeRule>,
    /// Rules axe could not decide (to be checked by a person).
    pub incomplete: Vec<AxeRule>,
    /// How many rules passed.
    pub passes: usize,
}

#[derive(Debug, serde::Deserialize)]
pub struct AxeRule {
    pub id: String,
    pub impact: String,
    pub help: String,
    #[serde(rename = "helpUrl")]
    pub help_url: String,
    pub nodes: Vec<AxeNode>,
}

#[derive(Debug, serde::Deserialize)]
pub struct AxeNode {
    pub target: Vec<String>,
    pub html: String,
    pub summary: String,
}

impl AxeReport {
    /// Each violation: its rule, impact, help and the nodes' targets.
    pub fn describe(rules: &[AxeRule]) -> String {
        Self::describe_first(rules, usize::MAX)
    }

    /// As `describe`, with at most `limit` nodes a rule: enough to see
    /// what axe could not decide without burying the rest of a test's
    /// output.
    pub fn describe_first(rules: &[AxeRule], limit: usize) -> String {
        let mut out = String::new();
        for r in rules {
            out.push_str(&format!(
                "- {} ({}): {} <{}>\n",
                r.id, r.impact, r.help, r.help_url
            ));
            if r.nodes.len() > limit {
                out.push_str(&format!("    (the first {limit} of {})\n", r.nodes.len()));
            }
            for n in r.nodes.iter().take(limit) {
                out.push_str(&format!("    {}  {}\n", n.target.join(" "), n.html));
                for line in n.summary.lines() {
                    out.push_str(&format!("      {line}\n"));
                }
            }
        }
        out
    }

    /// Panics listing every violation, if any.
    pub fn assert_clean(&self, page: &str) {
        assert!(
            self.violations.is_empty(),
            "axe-core {} found {} WCAG 2.1 AA violation(s) on {page} ({}):\n{}",
            self.version,
            self.violations.len(),
            self.url,
            Self::describe(&self.violations)
        );
    }
}
