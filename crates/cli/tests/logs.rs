//! incasso's JSON logs as an operator collects them: one JSON object per
//! line, and never a person's full fiscal code, an IBAN or an API key,
//! even when a client puts them in a URL that the request log records.

use crate::cli::seeded_database;
use crate::common::process::{free_port, incasso, serve_command, start_server, temp_dir};
use incasso_testkit::Backend;
use std::io::{Read, Write};

const FISCAL_CODE: &str = "RSSMRA85T10A562S";
const IBAN: &str = "IT65B0200805364000104567891";

fn get(port: u16, path: &str, key: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nOcp-Apim-Subscription-Key: {key}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn json_logs_never_carry_a_fiscal_code_an_iban_or_a_key() {
    let dir = temp_dir("logs");
    let url = seeded_database(Backend::Sqlite, &dir);
    let key = String::from_utf8(
        incasso()
            .args(["api-key", "--database-url", &url, "--ente", "80000130585"])
            .arg("--data-dir")
            .arg(&dir)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .split_whitespace()
    .find(|w| w.starts_with("inc_"))
    .expect("a key printed")
    .to_string();
    let log = dir.join("incasso.log");
    let port = free_port();
    let mut command = serve_command(&url, &dir, port);
    command
        .args(["--log-format", "json"])
        .env("RUST_LOG", "info,tower_http=debug")
        .stderr(std::fs::File::create(&log).unwrap());
    let mut server = start_server(command, port);
    let answer = get(
        port,
        &format!(
            "/gpd/v1/organizations/80000130585/debtpositions?fiscalCode={FISCAL_CODE}&iban={IBAN}&key={key}"
        ),
        &key,
    );
    assert!(answer.starts_with("HTTP/1.1 "), "{answer}");
    get(
        port,
        &format!("/portale/80000130585/avvisi/{FISCAL_CODE}"),
        "",
    );
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() > 3, "{text}");
    for line in &lines {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
    }
    let secret_part = key.rsplit('_').next().unwrap();
    for (what, value) in [
        ("fiscal code", FISCAL_CODE),
        ("IBAN", IBAN),
        ("API key", secret_part),
    ] {
        assert!(!text.contains(value), "a full {what} in the log:\n{text}");
    }
    // They were there to be masked: the requests' URLs are in the log.
    assert!(text.contains("*************62S"), "{text}");
    assert!(text.contains("************************891"), "{text}");
    let key_id = key.split('_').nth(1).unwrap();
    assert!(text.contains(&format!("inc_{key_id}_***")), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
