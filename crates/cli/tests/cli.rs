//! The `incasso` binary as a user runs it, on each database
//! (`incasso_testkit::backends()`): SQLite, and PostgreSQL when the test
//! command provides one, named to the binary as a user would, through
//! `--database-url` or `INCASSO_DATABASE_URL`.

use crate::common::process;

use incasso_testkit::{Backend, backends};
use process::{
    Running, bench_output, bench_quick, database_for, free_port, incasso, temp_dir, wait_for_health,
};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `incasso COMMAND --database-url URL --ente <the demo Comune>`.
pub(crate) fn incasso_for_ente(command: &str, url: &str) -> Command {
    let mut c = incasso();
    c.args([command, "--database-url", url, "--ente", "80000130585"]);
    c
}

trait DatabaseEnv {
    /// `INCASSO_DATABASE_URL` set to `url`, or removed so that the data
    /// dir's SQLite file is used.
    fn database(&mut self, url: Option<&str>) -> &mut Self;
}

impl DatabaseEnv for Command {
    fn database(&mut self, url: Option<&str>) -> &mut Self {
        match url {
            Some(url) => self.env("INCASSO_DATABASE_URL", url),
            None => self.env_remove("INCASSO_DATABASE_URL"),
        }
    }
}

/// `serve --demo` seeds once, writes demo.json with the documented shape,
/// answers with the keys it wrote, and stops cleanly on SIGTERM.
#[test]
fn serve_demo_writes_demo_json_and_stops_on_sigterm() {
    for backend in backends() {
        serve_demo_writes_demo_json_and_stops_on_sigterm_on(backend);
    }
}

fn serve_demo_writes_demo_json_and_stops_on_sigterm_on(backend: Backend) {
    // Shown with a failure, which otherwise would not say which database.
    eprintln!("serve_demo_writes_demo_json_and_stops_on_sigterm on {backend:?}");
    let dir = temp_dir(&format!("demo-{backend:?}"));
    let db = database_for(backend);
    for round in 0..2 {
        let port = free_port();
        let mut child = incasso()
            .args([
                "serve",
                "--demo",
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(&dir)
            .database(db.as_deref())
            .stderr(Stdio::piped())
            .spawn()
            .map(Running)
            .unwrap();
        assert!(
            wait_for_health(port),
            "round {round}: server did not become healthy"
        );
        let demo: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("demo.json")).unwrap()).unwrap();
        assert_eq!(demo["base_url"], format!("http://127.0.0.1:{port}"));
        assert_eq!(demo["broker_id"].as_str().unwrap().len(), 11);
        let enti = demo["enti"].as_array().unwrap();
        assert_eq!(enti.len(), 2);
        for e in enti {
            for key in [
                "fiscal_code",
                "name",
                "station_id",
                "segregation_code",
                "iban",
                "api_key",
                "backoffice_user",
                "backoffice_password",
                "office_user",
                "office_password",
                "accountant_user",
                "accountant_password",
            ] {
                assert!(
                    e[key].as_str().is_some_and(|s| !s.is_empty()),
                    "demo.json: {key} missing"
                );
            }
            assert_eq!(e["segregation_code"].as_str().unwrap().len(), 2);
            let services = e["services"].as_array().unwrap();
            assert!(!services.is_empty());
            assert!(
                services
                    .iter()
                    .all(|s| s["code"].is_string() && s["spontaneous"].is_boolean())
            );
            let notices = e["payable_notices"].as_array().unwrap();
            assert!(
                notices.len() >= 50,
                "a few hundred positions, most of them payable"
            );
            for n in notices {
                let nav = n["notice_number"].as_str().unwrap();
                assert_eq!(nav.len(), 18);
                assert!(nav.starts_with(&format!("3{}", e["segregation_code"].as_str().unwrap())));
                assert!(n["amount_cents"].as_i64().unwrap() > 0);
            }
            // Each of the Ente's people in demo.json signs in to the back office.
            for (user, password) in [
                ("backoffice_user", "backoffice_password"),
                ("office_user", "office_password"),
                ("accountant_user", "accountant_password"),
            ] {
                let answer = sign_in(
                    port,
                    e[user].as_str().unwrap(),
                    e[password].as_str().unwrap(),
                );
                assert!(
                    answer.starts_with("HTTP/1.1 303"),
                    "round {round}, {user}: {answer}"
                );
            }
            // The key in demo.json works, on its own Ente.
            let fc = e["fiscal_code"].as_str().unwrap();
            let key = e["api_key"].as_str().unwrap();
            let out = http_get(
                port,
                &format!("/gpd/v1/organizations/{fc}/debtpositions?limit=50&status=PAID"),
                key,
            );
            assert!(out.starts_with("HTTP/1.1 200"), "{out}");
            assert!(
                out.contains("\"status\":\"PAID\""),
                "some demo positions are paid"
            );
        }
        assert_eq!(
            demo["backoffice_url"],
            format!("http://127.0.0.1:{port}/backoffice/")
        );
        assert_eq!(
            demo["portal_index_url"],
            format!("http://127.0.0.1:{port}/portale/")
        );
        for e in enti {
            let fc = e["fiscal_code"].as_str().unwrap();
            assert_eq!(
                e["portal_url"],
                format!("http://127.0.0.1:{port}/portale/{fc}/")
            );
        }
        let answer = sign_in(
            port,
            demo["intermediary_user"].as_str().unwrap(),
            demo["intermediary_password"].as_str().unwrap(),
        );
        assert!(answer.starts_with("HTTP/1.1 303"), "{answer}");
        let wrong = sign_in(
            port,
            demo["intermediary_user"].as_str().unwrap(),
            "Sbagliata-2026!",
        );
        assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
        // Each of the simulator's SPID/CIE test identities signs in as the
        // operator demo.json names, and the citizen is refused.
        let identities = demo["test_identities"].as_array().unwrap();
        let mut operators: Vec<&str> = vec![demo["intermediary_user"].as_str().unwrap()];
        for e in enti {
            for key in [
                "backoffice_user",
                "office_user",
                "accountant_user",
                "desk_user",
            ] {
                operators.push(e[key].as_str().unwrap());
            }
            // The Sportello Digitale's clerk signs in with demo.json's word.
            let clerk = sign_in(
                port,
                e["desk_user"].as_str().unwrap(),
                e["desk_password"].as_str().unwrap(),
            );
            assert!(clerk.starts_with("HTTP/1.1 303"), "{clerk}");
        }
        assert_eq!(identities.len(), operators.len() + 1, "{identities:?}");
        for who in identities {
            let fiscal_code = who["fiscal_code"].as_str().unwrap();
            let name = who["name"].as_str().unwrap();
            assert_eq!(fiscal_code.len(), 16);
            match who["operator"].as_str() {
                Some(username) => {
                    assert!(operators.contains(&username), "{who}");
                    let (status, home) = spid_sign_in(port, fiscal_code);
                    assert_eq!(status, 303, "round {round}, {username}: {home}");
                    assert!(home.contains(name), "round {round}, {username}: {home}");
                }
                None => {
                    assert!(who["operator"].is_null(), "{who}");
                    let (status, page) = spid_sign_in(port, fiscal_code);
                    assert_eq!(status, 401, "the citizen is no operator: {page}");
                }
            }
        }
        // Seeded once: the second start finds the same positions.
        let out = http_get(
            port,
            "/gpd/v1/organizations/80000130585/debtpositions?limit=1",
            enti[0]["api_key"].as_str().unwrap(),
        );
        // 200, and the citizen's two (the personal area's, at both Enti).
        assert!(out.contains("\"items_found\":202"), "round {round}: {out}");

        // SIGTERM: graceful stop, exit status 0.
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        let exit = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(exit.success(), "exit status {exit}");
        let log: Vec<String> = BufReader::new(child.stderr.take().unwrap())
            .lines()
            .map_while(Result::ok)
            .collect();
        assert!(
            log.iter().any(|l| l.contains("shutdown requested")),
            "{log:?}"
        );
        // It served from the database it was given, not the data dir's
        // default file.
        let dialect = match db {
            Some(_) => "database=Postgres",
            None => "database=Sqlite",
        };
        assert!(
            log.iter()
                .any(|l| l.contains("incasso listening") && l.contains(dialect)),
            "{log:?}"
        );
        assert_eq!(dir.join("incasso.db").exists(), db.is_none());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Signs in to the back office as a browser does (the form, its CSRF
/// cookie and field, the post); answers the post's raw HTTP answer.
fn sign_in(port: u16, user: &str, password: &str) -> String {
    use std::io::{Read, Write};
    let raw = |request: String| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let page =
        raw("GET /backoffice/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_string());
    let cookie = page
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: incasso_form="))
        .map(|v| v.split(';').next().unwrap().to_string())
        .unwrap_or_else(|| panic!("no form cookie: {page}"));
    let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = &page[at..at + page[at..].find('"').unwrap()];
    let encode = |v: &str| -> String {
        v.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let body = format!(
        "username={}&password={}&csrf={csrf}",
        encode(user),
        encode(password)
    );
    raw(format!(
        "POST /backoffice/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: incasso_form={cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

/// Signs in through the demo's SPID/CIE link as a browser does: to the
/// simulator's provider, the choice of `fiscal_code`, back with the code.
/// The callback's status, and the home page it leads to (else the page it
/// answered).
fn spid_sign_in(port: u16, fiscal_code: &str) -> (u16, String) {
    incasso_pagopa::connector::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let cookie_of = |r: &reqwest::Response, name: &str| {
            r.headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(|c| {
                    c.split(';')
                        .next()?
                        .strip_prefix(&format!("{name}="))
                        .map(str::to_string)
                })
        };
        let location =
            |r: &reqwest::Response| r.headers()["location"].to_str().unwrap().to_string();
        let start = http
            .get(format!("{base}/backoffice/spid"))
            .send()
            .await
            .unwrap();
        assert_eq!(start.status(), 303);
        let spid = cookie_of(&start, "incasso_spid").unwrap();
        let authorize = location(&start);
        let page = http
            .get(&authorize)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains(fiscal_code), "{page}");
        let at = page.find("name=\"request\" value=\"").unwrap() + 22;
        let request = &page[at..at + page[at..].find('"').unwrap()];
        let provider = &authorize[..authorize.find("/authorize").unwrap()];
        let back = http
            .post(format!("{provider}/authorize"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "request={request}&identity={fiscal_code}&action=entra"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(back.status(), 303);
        let callback = http
            .get(location(&back))
            .header("cookie", format!("incasso_spid={spid}"))
            .send()
            .await
            .unwrap();
        let status = callback.status().as_u16();
        let Some(session) = cookie_of(&callback, "incasso_session").filter(|s| !s.is_empty())
        else {
            return (status, callback.text().await.unwrap());
        };
        let home = http
            .get(format!("{base}/backoffice/"))
            .header("cookie", format!("incasso_session={session}"))
            .send()
            .await
            .unwrap();
        (status, home.text().await.unwrap())
    })
}

fn http_get(port: u16, path: &str, key: &str) -> String {
    http_get_at("127.0.0.1", port, path, key)
}

fn http_get_at(host: &str, port: u16, path: &str, key: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect((host, port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nOcp-Apim-Subscription-Key: {key}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn migrate_and_bad_database_url() {
    for backend in backends() {
        migrate_and_bad_database_url_on(backend);
    }
}

fn migrate_and_bad_database_url_on(backend: Backend) {
    // Shown with a failure, which otherwise would not say which database.
    eprintln!("migrate_and_bad_database_url on {backend:?}");
    let dir = temp_dir(&format!("migrate-{backend:?}"));
    let db = database_for(backend);
    // Twice: migrations already applied are left alone.
    for _ in 0..2 {
        let out = incasso()
            .args(["migrate", "--data-dir"])
            .arg(&dir)
            .database(db.as_deref())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "migrations applied"
        );
    }
    // The SQLite file is made only when no database is named.
    assert_eq!(dir.join("incasso.db").exists(), db.is_none());
    if let Some(url) = &db {
        // A PostgreSQL database that does not exist: a failure that names
        // it, with the password masked.
        let missing = match url.split_once('?') {
            Some((base, query)) => format!("{base}_missing?{query}"),
            None => format!("{url}_missing"),
        };
        let out = incasso()
            .args(["migrate", "--database-url", &missing, "--data-dir"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("_missing"), "{stderr}");
        if let Some(password) = url_password(url) {
            assert!(!stderr.contains(&format!(":{password}@")), "{stderr}");
            assert!(stderr.contains(":***@"), "{stderr}");
        }
    }
    let out = incasso()
        .args(["migrate", "--database-url", "mysql://x/y"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("database URL must start with"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The password of a `postgres://user:password@host/...` URL.
fn url_password(url: &str) -> Option<&str> {
    let rest = &url[url.find("://")? + 3..];
    let userinfo = &rest[..rest.rfind('@')?];
    userinfo.split_once(':').map(|(_, p)| p)
}

/// The benchmark's contract: a readable table, then one JSON line with the
/// documented keys. (Its figures are not judged here: timings belong to
/// `incasso bench`, not to tests.)
#[test]
fn bench_positions_quick_prints_its_json_last() {
    for backend in backends() {
        bench_positions_quick_prints_its_json_last_on(backend);
    }
}

fn bench_positions_quick_prints_its_json_last_on(backend: Backend) {
    // Shown with a failure, which otherwise would not say which database.
    eprintln!("bench_positions_quick_prints_its_json_last on {backend:?}");
    let db = database_for(backend);
    let (v, last, _) = bench_output("positions", db.as_deref());
    assert_eq!(v["items"], 2000);
    assert_eq!(v["backend"], backend_name(backend), "{last}");
    for key in [
        "seconds",
        "per_s",
        "peak_rss_mb",
        "baseline_per_s",
        "ratio",
        "http_per_s",
    ] {
        assert!(v[key].as_f64().is_some_and(|x| x > 0.0), "{key} in {last}");
    }
}

/// The name a bench's JSON gives the backend it ran on.
fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

/// The same year on both databases: the same count matched on each.
#[test]
fn bench_recon_quick_prints_its_json_last() {
    for backend in backends() {
        bench_recon_quick_prints_its_json_last_on(backend);
    }
}

fn bench_recon_quick_prints_its_json_last_on(backend: Backend) {
    eprintln!("bench_recon_quick_prints_its_json_last on {backend:?}");
    let db = database_for(backend);
    let (v, last, _) = bench_output("recon", db.as_deref());
    assert_eq!(v["bench"], "recon");
    assert_eq!(v["backend"], backend_name(backend), "{last}");
    assert_eq!(v["items"], 3000);
    // One flow in a hundred has no sospeso; the rest are matched except the
    // ones with a wrong amount (one in a hundred).
    assert_eq!(v["matched"], 294, "{last}");
    for key in [
        "seconds",
        "per_s",
        "peak_rss_mb",
        "flows_seconds",
        "match_seconds",
    ] {
        assert!(v[key].as_f64().is_some_and(|x| x > 0.0), "{key} in {last}");
    }
}

/// `incasso bench backoffice --quick` on both databases: every page it
/// browses answers 200 (the bench stops otherwise), and the JSON line
/// carries its figures.
#[test]
fn bench_backoffice_quick_prints_its_json_last() {
    for backend in backends() {
        eprintln!("bench_backoffice_quick_prints_its_json_last on {backend:?}");
        let (v, last, _) = bench_quick("backoffice", backend);
        assert!(
            v["positions"].as_u64().is_some_and(|n| n >= 5_000),
            "{last}"
        );
        for key in [
            "seconds",
            "per_s",
            "p50_ms",
            "p99_ms",
            "worst_page_p95_ms",
            "peak_rss_mb",
        ] {
            assert!(v[key].as_f64().is_some_and(|x| x > 0.0), "{key} in {last}");
        }
    }
}

/// With `serve --demo`, the built-in simulator is up: a notice is paid from
/// the command line (`incasso simulator pay`) and another through the
/// Checkout page the demo's pay link leads to.
#[test]
fn demo_notices_are_paid_through_the_simulator() {
    for backend in backends() {
        demo_notices_are_paid_through_the_simulator_on(backend);
    }
}

fn demo_notices_are_paid_through_the_simulator_on(backend: Backend) {
    // Shown with a failure, which otherwise would not say which database.
    eprintln!("demo_notices_are_paid_through_the_simulator on {backend:?}");
    let dir = temp_dir(&format!("simpay-{backend:?}"));
    let db = database_for(backend);
    let port = free_port();
    // Listening on every address, reached by colleagues as 127.0.0.2: the
    // simulator must be reachable there too, and every URL given out must
    // use the public URL, never the Host header (the requests below send
    // `Host: x`).
    let public = format!("http://127.0.0.2:{port}");
    let mut child = incasso()
        .args([
            "serve",
            "--demo",
            "--bind",
            &format!("0.0.0.0:{port}"),
            "--public-url",
            &public,
            "--data-dir",
        ])
        .arg(&dir)
        .database(db.as_deref())
        .stderr(Stdio::null())
        .spawn()
        .map(Running)
        .unwrap();
    assert!(wait_for_health(port));
    // The database it was given, not the data dir's default file.
    assert_eq!(dir.join("incasso.db").exists(), db.is_none());
    let demo: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("demo.json")).unwrap()).unwrap();
    let ente = &demo["enti"][0];
    let fc = ente["fiscal_code"].as_str().unwrap();
    let key = ente["api_key"].as_str().unwrap();
    let notices = ente["payable_notices"].as_array().unwrap();
    // 1. From the command line.
    let nav = notices[1]["notice_number"].as_str().unwrap();
    let out = incasso()
        .args(["simulator", "pay", "--notice", nav, "--demo-json"])
        .arg(dir.join("demo.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let payment: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(payment["notice_number"], nav);
    assert_eq!(payment["receipt_ids"].as_array().unwrap().len(), 1);
    let iupd = notices[1]["iupd"].as_str().unwrap();
    let position = http_get(
        port,
        &format!("/gpd/v1/organizations/{fc}/debtpositions/{iupd}"),
        key,
    );
    assert!(
        position.contains("\"status\":\"PAID\"")
            || position.contains("\"status\":\"PARTIALLY_PAID\""),
        "{position}"
    );
    // Paying it again is refused by the Ente, and the command says so.
    let out = incasso()
        .args(["simulator", "pay", "--notice", nav, "--demo-json"])
        .arg(dir.join("demo.json"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PAA_PAGAMENTO_DUPLICATO"));
    // 2. Through the pay link and the Checkout page.
    let pay_url = ente["pay_url"].as_str().unwrap();
    assert!(pay_url.starts_with(&public), "{pay_url}");
    let path = pay_url.trim_start_matches(&public);
    let sim_url = demo["simulator_url"].as_str().unwrap();
    assert!(sim_url.starts_with("http://127.0.0.2:"), "{sim_url}");
    let sim_port: u16 = sim_url.rsplit(':').next().unwrap().parse().unwrap();
    let carts = || -> Vec<serde_json::Value> {
        let r = http_get_at("127.0.0.2", sim_port, "/simulator/carts", "");
        serde_json::from_str(r.split("\r\n\r\n").nth(1).unwrap()).unwrap()
    };
    // A GET (a link scanner, a crawler) shows the notice and makes no cart.
    let shown = http_get(port, path, "");
    assert!(shown.starts_with("HTTP/1.1 200"), "{shown}");
    assert!(
        shown.contains(&format!("method=\"post\" action=\"{path}\"")),
        "{shown}"
    );
    let head = http_request(port, "HEAD", path);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(carts().is_empty(), "a GET made a cart");
    // The button posts: one cart, reused when pressed again.
    let redirect = http_post(port, path);
    let again = http_post(port, path);
    let location_of = |r: &str| {
        r.lines()
            .find_map(|l| {
                l.strip_prefix("location: ")
                    .or_else(|| l.strip_prefix("Location: "))
            })
            .unwrap_or_else(|| panic!("no redirect: {r}"))
            .trim()
            .to_string()
    };
    let location = location_of(&redirect);
    assert_eq!(location, location_of(&again), "the open cart is reused");
    let made = carts();
    assert_eq!(made.len(), 1, "{made:?}");
    let back = made[0]["return_ok_url"].as_str().unwrap();
    assert!(back.starts_with(&format!("{public}/pay/")), "{back}");
    assert!(location.starts_with(sim_url), "{location}");
    let sim_path = location
        .splitn(4, '/')
        .nth(3)
        .map(|p| format!("/{p}"))
        .unwrap();
    let page = http_get_at("127.0.0.2", sim_port, &sim_path, "");
    assert!(page.contains("Paga"), "{page}");
    let paid = http_request_at("127.0.0.2", sim_port, "POST", &format!("{sim_path}/pay"));
    assert!(paid.starts_with("HTTP/1.1 303"), "{paid}");
    assert!(paid.contains("outcome=ok"), "{paid}");
    let nav0 = notices[0]["notice_number"].as_str().unwrap();
    let outcome = http_get(port, &format!("/pay/{fc}/{nav0}/esito"), "");
    assert!(outcome.contains("data-status=\"PAID\""), "{outcome}");
    demo_pos_and_webhook_keys_answer(&demo, port, sim_port, &[nav, nav0]);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// demo.json's POS and webhook keys (issue 18's demo) lead where they
/// say, and the demo's payments `paid` show up in the receiver's listed
/// deliveries and in the first Ente's events feed.
fn demo_pos_and_webhook_keys_answer(
    demo: &serde_json::Value,
    port: u16,
    sim_port: u16,
    paid: &[&str],
) {
    let sim_url = demo["simulator_url"].as_str().unwrap();
    // The simulator's, on its port (the receiver's on the loopback when
    // the demo is shown on another host: incasso posts to it).
    let path_of = |key: &str| -> String {
        let url = demo[key].as_str().unwrap_or_default();
        let at = format!(":{sim_port}/");
        assert!(
            url.starts_with("http://") && url.contains(&at),
            "demo.json: {key} = {url:?}, simulator {sim_url}"
        );
        url[url.find(&at).unwrap() + at.len() - 1..].to_string()
    };
    let body = |answer: &str| {
        answer
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_string()
    };
    // The POS gateway answers (and wants its subscription key).
    let gateway = path_of("pos_gateway_url");
    let answer = http_request_at(
        "127.0.0.2",
        sim_port,
        "POST",
        &format!("{gateway}/pos/terminals"),
    );
    let status: u16 = answer[9..12].parse().unwrap();
    assert!(status != 404 && status < 500, "pos_gateway_url: {answer}");
    // The terminals demo.json lists are the control's.
    let control = path_of("pos_control_url");
    let answer = http_get_at("127.0.0.2", sim_port, &control, "");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let known: serde_json::Value = serde_json::from_str(&body(&answer)).unwrap();
    let known: Vec<&str> = known
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    let enti = demo["enti"].as_array().unwrap();
    let first = &enti[0]["terminals"];
    assert!(
        first
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == "SIMPOS01"
                && t["desk"] == "SPORTELLO_01"
                && t["description"].is_string()),
        "a terminal on the desk: {first}"
    );
    for e in enti {
        let terminals = e["terminals"].as_array().unwrap();
        assert!(!terminals.is_empty(), "{e}");
        for t in terminals {
            assert!(
                known.contains(&t["id"].as_str().unwrap()),
                "{t} in {known:?}"
            );
        }
    }
    let script = http_request_at("127.0.0.2", sim_port, "PUT", &format!("{control}/SIMPOS01"));
    assert!(!script.starts_with("HTTP/1.1 404"), "{script}");
    // The demo's payments reach its receiver, listed at both URLs.
    let receiver = path_of("webhook_receiver_url");
    let deliveries = path_of("webhook_deliveries_url");
    let deadline = Instant::now() + Duration::from_secs(30);
    let got = loop {
        let answer = http_get_at("127.0.0.2", sim_port, &receiver, "");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        let report: serde_json::Value = serde_json::from_str(&body(&answer)).unwrap();
        let navs: Vec<String> = report["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["type"] == "PAID" && d["answered"] == 200)
            .filter_map(|d| d["notice_number"].as_str().map(str::to_string))
            .collect();
        if paid.iter().all(|n| navs.iter().any(|m| m == n)) || Instant::now() > deadline {
            break navs;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    for n in paid {
        assert!(got.iter().any(|m| m == n), "{n} not delivered: {got:?}");
    }
    let listed = http_get_at("127.0.0.2", sim_port, &deliveries, "");
    assert!(listed.starts_with("HTTP/1.1 200"), "{listed}");
    assert!(paid.iter().all(|n| listed.contains(n)), "{listed}");
    // The endpoint registered for it, and the Ente's feed.
    let e = &enti[0];
    let endpoint = &e["webhook_endpoint"];
    assert!(endpoint["id"].as_i64().is_some(), "{e}");
    assert_eq!(endpoint["url"], demo["webhook_receiver_url"]);
    let public = demo["base_url"].as_str().unwrap();
    let own = |key: &serde_json::Value| -> String {
        let url = key.as_str().unwrap();
        assert!(url.starts_with(public), "{url}");
        url[public.len()..].to_string()
    };
    let feed = http_get(
        port,
        &format!("{}?after=0&limit=1000", own(&e["events_url"])),
        e["api_key"].as_str().unwrap(),
    );
    assert!(feed.starts_with("HTTP/1.1 200"), "{feed}");
    assert!(paid.iter().all(|n| feed.contains(n)), "{feed}");
    let their = http_get(
        port,
        &own(&endpoint["deliveries_url"]),
        demo["intermediary_api_key"].as_str().unwrap(),
    );
    assert!(their.starts_with("HTTP/1.1 200"), "{their}");
    assert!(paid.iter().all(|n| their.contains(n)), "{their}");
}

fn http_post(port: u16, path: &str) -> String {
    http_request(port, "POST", path)
}

fn http_request(port: u16, method: &str, path: &str) -> String {
    http_request_at("127.0.0.1", port, method, path)
}

fn http_request_at(host: &str, port: u16, method: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect((host, port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn bench_node_quick_prints_its_json_last() {
    for backend in backends() {
        bench_node_quick_prints_its_json_last_on(backend, 0);
        // Two `incasso serve` processes on one PostgreSQL, as deployed
        // behind a balancer; the bench checks every position got paid.
        if backend == Backend::Postgres {
            bench_node_quick_prints_its_json_last_on(backend, 2);
        }
    }
}

fn bench_node_quick_prints_its_json_last_on(backend: Backend, processes: u16) {
    // Shown with a failure, which otherwise would not say which database.
    eprintln!("bench_node_quick_prints_its_json_last on {backend:?}, {processes} processes");
    let db = database_for(backend);
    let out = incasso()
        .args(["bench", "node", "--quick", "--processes"])
        .arg(processes.to_string())
        .args(db.iter().flat_map(|url| ["--database-url", url]))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(v["bench"], "node");
    assert_eq!(v["items"], 300);
    assert_eq!(v["processes"], processes, "{stdout}");
    assert_eq!(
        stdout.contains(&format!("{processes} incasso serve processes")),
        processes > 0,
        "{stdout}"
    );
    for key in [
        "seconds",
        "per_s",
        "p50_ms",
        "p99_ms",
        "peak_rss_mb",
        "baseline_per_s",
        "ratio",
    ] {
        assert!(
            v[key].as_f64().is_some_and(|x| x > 0.0),
            "{key} in {stdout}"
        );
    }
}

/// A database with the demo Comune, its station and a TARI service: a
/// SQLite file in `dir`, or a fresh PostgreSQL database.
pub(crate) fn seeded_database(backend: Backend, dir: &std::path::Path) -> String {
    let url = database_for(backend)
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("bus.db").display()));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use incasso_core::accertamento::AccertamentoRef;
        let store = incasso_store::Store::connect(&url).await.unwrap();
        let now = chrono_now();
        store
            .create_ente(
                &incasso_core::ente::Ente {
                    fiscal_code: "80000130585".into(),
                    name: "Comune di Borgo Esempio".into(),
                    ipa_code: None,
                    iban: Some("IT65B0200805364000104567891".into()),
                    postal_iban: None,
                    cbill_code: None,
                    email: None,
                },
                now,
            )
            .await
            .unwrap();
        store
            .add_station(
                "80000130585",
                &incasso_core::ente::StationLink {
                    broker_id: "15376371009".into(),
                    station_id: "ST_01".into(),
                    segregation_code: 1,
                },
                now,
            )
            .await
            .unwrap();
        store
            .put_accertamento(
                "80000130585",
                &incasso_core::accertamento::Accertamento {
                    year: 2026,
                    code: "ACC-TARI".into(),
                    description: "TARI".into(),
                    chapter: "1010".into(),
                    article: None,
                    siope_code: None,
                    active: true,
                },
            )
            .await
            .unwrap();
        store
            .put_service(
                "80000130585",
                &incasso_core::catalogue::Service {
                    code: "TARI".into(),
                    name: "TARI".into(),
                    office_code: None,
                    taxonomy_code: "9/0101101IM/".into(),
                    default_accertamento: Some(AccertamentoRef {
                        year: 2026,
                        code: "ACC-TARI".into(),
                    }),
                    iban: None,
                    fixed_amount: None,
                    spontaneous: false,
                    pagopa_service_id: None,
                    active: true,
                },
            )
            .await
            .unwrap();
        store.close().await;
    });
    url
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

pub(crate) fn positions_in(url: &str) -> u64 {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = incasso_store::Store::connect(url).await.unwrap();
        let n = store
            .list_positions(
                "80000130585",
                &incasso_store::ListFilter {
                    limit: 1,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .items_found;
        store.close().await;
        n
    })
}

pub(crate) fn write_csv(path: &std::path::Path, rows: u64) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(f, "codice;servizio;codice_fiscale;nominativo;rata;importo;causale;scadenza;iuv;accertamento;operazione").unwrap();
    for i in 0..rows {
        let cf = incasso_core::sample::personal_fiscal_code(i);
        writeln!(
            f,
            "K-{i:07};TARI;{cf};Contribuente {i};0;12,34;TARI 2027;31/12/2027;;;"
        )
        .unwrap();
    }
}

/// `incasso load` from the command line: a Windows-1252 fixed-width file
/// loads, with its outcome beside it; a bad file exits non-zero; a load
/// killed with SIGKILL halfway leaves nothing, and the same file then loads
/// whole, once.
#[test]
fn load_from_the_command_line_survives_kill_9() {
    for backend in backends() {
        load_from_the_command_line_survives_kill_9_on(backend);
    }
}

fn load_from_the_command_line_survives_kill_9_on(backend: Backend) {
    // Shown with a failure, which otherwise would not say which database.
    eprintln!("load_from_the_command_line_survives_kill_9 on {backend:?}");
    let dir = temp_dir(&format!("load-{backend:?}"));
    let url = seeded_database(backend, &dir);
    // Fixed width, Windows-1252.
    let line = format!(
        "{:<12}{:<16}{:<40}{:<50}{:011}{}{:<10}{:<18}\r\n",
        "LEG-1", "RSSMRA85T10A562S", "Niccolò Ré", "TARI", 4_200, "20271231", "TARI", ""
    );
    let fixed = dir.join("legacy.txt");
    std::fs::write(&fixed, encoding_rs::WINDOWS_1252.encode(&line).0).unwrap();
    let out = incasso_for_ente("load", &url)
        .args(["--layout", "legacy-fixed"])
        .arg(&fixed)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let outcome = std::fs::read(dir.join("legacy.txt.esito")).unwrap();
    let outcome = encoding_rs::WINDOWS_1252.decode(&outcome).0.into_owned();
    assert!(
        outcome.contains("Niccolò Ré") && outcome.contains("301000000000"),
        "{outcome}"
    );
    // A refused file: exit status 1, the report beside it.
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "codice;servizio;codice_fiscale;nominativo;rata;importo;causale;scadenza;iuv;accertamento;operazione\nB-1;TARI;XXX;Nome;0;1,00;x;31/12/2027;;;\n").unwrap();
    let out = incasso_for_ente("load", &url)
        .args(["--layout", "incasso-csv"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        std::fs::read_to_string(dir.join("bad.csv.rapporto.csv"))
            .unwrap()
            .contains("BAD_FISCAL_CODE")
    );
    assert_eq!(positions_in(&url), 1);
    // SIGKILL in the middle of a large supply.
    let big = dir.join("big.csv");
    write_csv(&big, 60_000);
    let mut child = incasso_for_ente("load", &url)
        .args(["--layout", "incasso-csv"])
        .arg(&big)
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let still_running = child.try_wait().unwrap().is_none();
    let _ = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(
        still_running,
        "the load finished before it could be killed: make the file bigger"
    );
    assert_eq!(
        positions_in(&url),
        1,
        "a killed supply must leave nothing behind"
    );
    // Sent again: loads whole, once.
    let out = incasso_for_ente("load", &url)
        .args(["--layout", "incasso-csv"])
        .arg(&big)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(positions_in(&url), 60_001);
    let out = incasso_for_ente("load", &url)
        .args(["--layout", "incasso-csv"])
        .arg(&big)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("già caricato"));
    assert_eq!(positions_in(&url), 60_001);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A layout that loads the valid rows commits as it goes: killed with
/// SIGKILL after some commits, the same file sent again resumes from the
/// last checkpoint. Every row ends up loaded exactly once, the refused row
/// is reported once, and the outcome lists every loaded row with its notice
/// number, those committed before the kill included.
#[test]
fn partial_load_killed_halfway_resumes_from_its_checkpoint() {
    for backend in backends() {
        partial_load_killed_halfway_resumes_from_its_checkpoint_on(backend);
    }
}

fn partial_load_killed_halfway_resumes_from_its_checkpoint_on(backend: Backend) {
    // Shown with a failure, which otherwise would not say which database.
    eprintln!("partial_load_killed_halfway_resumes_from_its_checkpoint on {backend:?}");
    let dir = temp_dir(&format!("resume-{backend:?}"));
    let url = seeded_database(backend, &dir);
    let layout = incasso_bus::builtin::source("incasso-csv")
        .unwrap()
        .replace("name = \"incasso-csv\"", "name = \"tributi-parziale\"")
        .replace(
            "all_or_nothing = true",
            "all_or_nothing = false\ncheckpoint_rows = 10000",
        );
    let layout_file = dir.join("tributi-parziale.toml");
    std::fs::write(&layout_file, layout).unwrap();
    let rows = 160_000u64;
    let big = dir.join("tributi.csv");
    write_csv(&big, rows);
    // One bad row far into the file: reported once, whatever the restarts.
    let text = std::fs::read_to_string(&big).unwrap().replacen(
        "K-0070000;TARI;",
        "K-0070000;SCONOSCIUTO;",
        1,
    );
    std::fs::write(&big, text).unwrap();
    let load = || {
        let mut c = incasso_for_ente("load", &url);
        c.args(["--layout", "tributi-parziale", "--layout-file"])
            .arg(&layout_file)
            .arg(&big);
        c
    };
    let mut child = load()
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Killed once something is committed, well before the end. The load
    // takes a second or two on a fast machine, so the polls share one
    // connection: opening one per poll took longer than the load on CI.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(incasso_store::Store::connect(&url)).unwrap();
    let count = || {
        rt.block_on(store.list_positions(
            "80000130585",
            &incasso_store::ListFilter {
                limit: 1,
                ..Default::default()
            },
        ))
        .unwrap()
        .items_found
    };
    let mut committed = 0;
    for _ in 0..3000 {
        committed = count();
        if committed > 0 || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let still_running = child.try_wait().unwrap().is_none();
    let _ = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status();
    let _ = child.wait();
    rt.block_on(store.close());
    assert!(
        still_running,
        "the load ended before it could be killed ({committed} positions seen)"
    );
    let committed_then = positions_in(&url);
    assert!(
        committed > 0 && committed_then < rows - 1,
        "killed after {committed_then} positions: not halfway"
    );
    // Sent again: it says it resumes, and finishes.
    let out = load().output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("ripresa del caricamento interrotto"),
        "{stderr}"
    );
    assert_eq!(positions_in(&url), rows - 1, "every good row, once");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["status"], "LOADED_WITH_ERRORS", "{report}");
    assert_eq!(report["rowsLoaded"], rows - 1, "{report}");
    assert_eq!(report["rowsRejected"], 1, "{report}");
    assert_eq!(report["positionsCreated"], rows - 1, "{report}");
    let csv = std::fs::read_to_string(dir.join("tributi.csv.rapporto.csv")).unwrap();
    assert_eq!(csv.matches("UNKNOWN_SERVICE").count(), 1, "{csv}");
    // The outcome: every row, each loaded one with its own notice number,
    // the refused one without.
    let outcome = std::fs::read_to_string(dir.join("tributi.csv.esito")).unwrap();
    assert_eq!(outcome.lines().count() as u64, rows + 1);
    let mut navs = std::collections::HashSet::new();
    for line in outcome.lines().skip(1) {
        let nav = line.split(';').nth(11).unwrap_or_default();
        if line.starts_with("K-0070000;") {
            assert_eq!(nav, "", "{line}");
            continue;
        }
        assert_eq!(nav.len(), 18, "no notice number in {line}");
        assert!(navs.insert(nav.to_string()), "notice number twice: {line}");
    }
    assert_eq!(navs.len() as u64, rows - 1);
    // And never a third time.
    let out = load().output().unwrap();
    assert!(!out.status.success());
    assert_eq!(positions_in(&url), rows - 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `incasso notices`: a supply's notices as a ZIP (one PDF per position and
/// an index), one position's, one notice number's; an unknown notice number
/// exits non-zero saying so.
#[test]
fn notices_from_the_command_line() {
    for backend in backends() {
        notices_from_the_command_line_on(backend);
    }
}

fn notices_from_the_command_line_on(backend: Backend) {
    // Shown with a failure, which otherwise would not say which database.
    eprintln!("notices_from_the_command_line on {backend:?}");
    let dir = temp_dir(&format!("notices-{backend:?}"));
    let url = seeded_database(backend, &dir);
    let csv = dir.join("tari.csv");
    write_csv(&csv, 3);
    let out = incasso_for_ente("load", &url)
        .args(["--layout", "incasso-csv"])
        .arg(&csv)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let supply = report["supplyId"].as_i64().unwrap().to_string();
    let zip_path = dir.join("avvisi.zip");
    let out = incasso_for_ente("notices", &url)
        .args(["--supply", &supply, "--output"])
        .arg(&zip_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let mut names: Vec<String> = (0..archive.len())
        .map(|i| archive.by_index(i).unwrap().name().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "K-0000000.pdf",
            "K-0000001.pdf",
            "K-0000002.pdf",
            "indice.csv"
        ]
    );
    let mut pdf = Vec::new();
    std::io::Read::read_to_end(&mut archive.by_name("K-0000001.pdf").unwrap(), &mut pdf).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    // One position, one notice number.
    let one = dir.join("k1.pdf");
    let out = incasso_for_ente("notices", &url)
        .args(["--position", "K-0000001", "--output"])
        .arg(&one)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read(&one).unwrap().starts_with(b"%PDF-"));
    let out = incasso_for_ente("notices", &url)
        .args(["--notice", "301999999999999999"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("avviso 301999999999999999"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `incasso reconcile` takes in a flow and a camt statement, refuses a
/// broken flow without stopping, and matches the sospeso to its flow.
#[test]
fn reconcile_from_the_command_line() {
    for backend in backends() {
        reconcile_from_the_command_line_on(backend);
    }
}

fn reconcile_from_the_command_line_on(backend: Backend) {
    // Shown with a failure, which otherwise would not say which database.
    eprintln!("reconcile_from_the_command_line on {backend:?}");
    use incasso_core::Cents;
    use incasso_core::fdr::{FlowOutcome, FlowPayment, PartyIdKind, ReportingFlow};
    let dir = temp_dir(&format!("reconcile-{backend:?}"));
    let url = seeded_database(backend, &dir);
    let day = chrono::NaiveDate::from_ymd_opt(2026, 10, 2).unwrap();
    let flow = ReportingFlow {
        flow_id: "2026-10-02PSPA-1".into(),
        flow_date_time: chrono_now(),
        settlement_ref: "TRN-A".into(),
        settlement_date: day,
        psp_id: "PSPEITMMXXX".into(),
        psp_id_kind: PartyIdKind::Bic,
        psp_name: None,
        bic: None,
        ente: "80000130585".into(),
        ente_name: None,
        declared_count: 1,
        declared_total: Cents(885),
        payments: vec![FlowPayment {
            iuv: "01000000000000001".into(),
            iur: "IUR-1".into(),
            transfer_index: Some(1),
            amount: Cents(885),
            outcome: FlowOutcome::Paid,
            outcome_date: day,
        }],
        revision: None,
    };
    let flow_file = dir.join("flusso.xml");
    std::fs::write(&flow_file, incasso_recon::fdr::write(&flow)).unwrap();
    let broken = dir.join("rotto.xml");
    std::fs::write(&broken, "<FlussoRiversamento>").unwrap();
    // The spec's camt.053, on the Ente's account, paying the flow.
    let spec = incasso_testkit::spec_dir().expect("the spec folder");
    let camt =
        std::fs::read_to_string(spec.join("treasury/camt/samples/camt053.v2.multi.statement.xml"))
            .unwrap()
            .replace("NL26VAYB8060476890", "IT65B0200805364000104567891")
            .replace(
                "Transaction Description 1",
                "/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPA-1",
            );
    let camt_file = dir.join("estratto.xml");
    std::fs::write(&camt_file, camt).unwrap();
    let out = incasso_for_ente("reconcile", &url)
        .arg("--flow")
        .arg(&flow_file)
        .arg("--flow")
        .arg(&broken)
        .arg("--treasury")
        .arg(&camt_file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a refused file makes the exit non-zero"
    );
    assert!(
        stderr.contains("rotto.xml: rifiutato [FDR_INVALID]"),
        "{stderr}"
    );
    assert!(stdout.contains("flusso"), "{stdout}");
    assert!(stdout.contains("2 movimenti nuovi"), "{stdout}");
    assert!(
        stdout.contains("1 flussi, 1 sospesi aperti, 1 abbinati"),
        "{stdout}"
    );
    // Again, with the same files: nothing new, the same result, exit 0.
    let out = incasso_for_ente("reconcile", &url)
        .arg("--flow")
        .arg(&flow_file)
        .arg("--treasury")
        .arg(&camt_file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("già acquisito"), "{stdout}");
    assert!(stdout.contains("0 movimenti nuovi"), "{stdout}");
    assert!(stdout.contains("1 abbinati"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
