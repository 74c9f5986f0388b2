//! `incasso backup`: a consistent copy of the SQLite database while
//! incasso serves from it and a supply is being written, and the copy
//! restored as the database of a new incasso.

use crate::cli::{incasso_for_ente, positions_in, seeded_database, write_csv};
use crate::common::process::{Running, free_port, incasso, serve_command, start_server, temp_dir};
use incasso_testkit::Backend;
use std::process::Stdio;
use std::time::Duration;

const ROWS: u64 = 30_000;

fn backup(url: &str, output: &std::path::Path) -> std::process::Output {
    incasso()
        .args(["backup", "--database-url", url, "--output"])
        .arg(output)
        .output()
        .unwrap()
}

#[test]
fn a_backup_taken_while_serving_and_loading_is_consistent_and_restores() {
    let dir = temp_dir("backup");
    let url = seeded_database(Backend::Sqlite, &dir);
    let port = free_port();
    let _server = start_server(serve_command(&url, &dir, port), port);
    let csv = dir.join("supply.csv");
    write_csv(&csv, ROWS);
    let mut load = Running(
        incasso_for_ente("load", &url)
            .args(["--layout", "incasso-csv"])
            .arg(&csv)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Copies while the supply is written: each must have it whole or not
    // at all (a supply is one transaction), and be a sound database.
    let mut copies = Vec::new();
    let mut during = 0;
    while load.try_wait().unwrap().is_none() && copies.len() < 20 {
        let copy = dir.join(format!("copy-{}.db", copies.len()));
        let out = backup(&url, &copy);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("copia scritta"));
        if load.try_wait().unwrap().is_none() {
            during += 1;
        }
        copies.push(copy);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(load.wait().unwrap().success(), "the supply was not loaded");
    assert!(
        during > 0,
        "no copy was taken while the supply loaded: make it bigger"
    );
    for copy in &copies {
        let n = positions_in(&format!("sqlite://{}", copy.display()));
        assert!(
            n == 0 || n == ROWS,
            "{}: {n} positions, half a supply",
            copy.display()
        );
        assert!(!dir.join(format!("{}.parziale", copy.display())).exists());
    }
    // After: the whole supply; restored as a new incasso's database.
    let last = dir.join("last.db");
    let out = backup(&url, &last);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Never over an existing file.
    let again = backup(&url, &last);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("esiste già"));
    let restored = temp_dir("backup-restored");
    std::fs::copy(&last, restored.join("incasso.db")).unwrap();
    std::fs::copy(dir.join("secret.key"), restored.join("secret.key")).unwrap();
    let port = free_port();
    let restored_url = format!("sqlite://{}", restored.join("incasso.db").display());
    let _restored_server = start_server(serve_command(&restored_url, &restored, port), port);
    let ready = http_status(port, "/ready");
    assert_eq!(ready, 200);
    assert_eq!(positions_in(&restored_url), ROWS);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&restored);
}

#[test]
fn a_postgresql_database_is_copied_with_pg_dump_not_backup() {
    if !incasso_testkit::backends().contains(&Backend::Postgres) {
        return;
    }
    let url = crate::common::process::database_for(Backend::Postgres).unwrap();
    let dir = temp_dir("backup-pg");
    let out = backup(&url, &dir.join("copy.db"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pg_dump") && stderr.contains("BACKUP_POSTGRESQL"),
        "{stderr}"
    );
    assert!(!dir.join("copy.db").exists());
}

fn http_status(port: u16, path: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out[9..12].parse().unwrap()
}
