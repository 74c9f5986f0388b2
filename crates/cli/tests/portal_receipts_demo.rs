//! `serve --demo` mails receipts through the simulator's SMTP server, on
//! each database: demo.json names the server (`smtp_url`) and where its
//! messages are read (`mail_url`); a notice paid by `incasso simulator
//! pay` brings one message there, to the payer, with the quietanza PDF.

use crate::common::process;

use base64::Engine as _;
use incasso_testkit::{Backend, backends};
use process::{Running, database_for, free_port, incasso, temp_dir, wait_for_health};
use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The body of `GET url` (plain HTTP, the simulator's).
fn get(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out.split_once("\r\n\r\n").unwrap().1.to_string()
}

#[test]
fn the_demo_mails_a_paid_notice_s_receipt_to_its_smtp_server() {
    for backend in backends() {
        run(backend);
    }
}

fn run(backend: Backend) {
    eprintln!("the demo's receipt e-mail on {backend:?}");
    let dir = temp_dir(&format!("receipts-{backend:?}"));
    let db = database_for(backend);
    let port = free_port();
    let mut cmd = incasso();
    cmd.args(["serve", "--demo", "--bind", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(&dir)
        .env_remove("INCASSO_SMTP_URL")
        .env_remove("INCASSO_MAIL_FROM")
        .stderr(Stdio::null());
    match &db {
        Some(url) => cmd.env("INCASSO_DATABASE_URL", url),
        None => cmd.env_remove("INCASSO_DATABASE_URL"),
    };
    let _server = Running(cmd.spawn().unwrap());
    assert!(wait_for_health(port));
    let demo: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("demo.json")).unwrap()).unwrap();
    let smtp = demo["smtp_url"].as_str().unwrap();
    assert!(smtp.starts_with("smtp://127.0.0.1:"), "{smtp}");
    let mail_url = demo["mail_url"].as_str().unwrap().to_string();
    assert_eq!(
        mail_url,
        format!("{}/simulator/mail", demo["simulator_url"].as_str().unwrap())
    );
    let listed: Vec<serde_json::Value> = serde_json::from_str(&get(&mail_url)).unwrap();
    assert!(
        !listed.iter().any(|m| m["subject"]
            .as_str()
            .is_some_and(|s| s.starts_with("Ricevuta"))),
        "no receipt before a payment"
    );

    let notice = &demo["enti"][0]["payable_notices"][2];
    let nav = notice["notice_number"].as_str().unwrap();
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

    let deadline = Instant::now() + Duration::from_secs(30);
    let message = loop {
        let listed: Vec<serde_json::Value> = serde_json::from_str(&get(&mail_url)).unwrap();
        // The receipt, not the App IO fallback e-mails (issue 19) that the
        // demo's other citizens may get meanwhile.
        if let Some(m) = listed.into_iter().find(|m| {
            m["subject"]
                .as_str()
                .is_some_and(|s| s.starts_with("Ricevuta di pagamento"))
        }) {
            break m;
        }
        assert!(Instant::now() < deadline, "no message at {mail_url}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let ente_name = demo["enti"][0]["name"].as_str().unwrap();
    assert_eq!(
        message["subject"],
        format!("Ricevuta di pagamento pagoPA – {ente_name}")
    );
    assert!(message["to"][0].as_str().unwrap().contains('@'));
    assert!(message["raw"].as_str().unwrap().contains("MIME-Version"));
    let iuv = &nav[1..];
    let attachment = &message["attachments"][0];
    assert_eq!(attachment["filename"], format!("ricevuta-{iuv}.pdf"));
    assert_eq!(attachment["content_type"], "application/pdf");
    let pdf = base64::engine::general_purpose::STANDARD
        .decode(attachment["base64"].as_str().unwrap())
        .unwrap();
    assert!(pdf.starts_with(b"%PDF"));
    let path = dir.join("ricevuta.pdf");
    std::fs::write(&path, &pdf).unwrap();
    match std::process::Command::new("pdftotext")
        .arg(&path)
        .arg("-")
        .output()
    {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8(o.stdout).unwrap();
            let cents = notice["amount_cents"].as_i64().unwrap();
            let amount = format!("{} €", incasso_core::Cents(cents).to_italian());
            assert!(text.contains(&amount) && text.contains(iuv), "{text}");
        }
        _ if std::env::var("INCASSO_REQUIRE_TOOLS").is_ok_and(|v| v == "1") => {
            panic!("pdftotext is required (poppler-utils)")
        }
        _ => eprintln!("pdftotext missing: the PDF's text is not checked"),
    }
}
