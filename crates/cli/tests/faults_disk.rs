//! SQLite's disk full (issue 20): the database on an 8 MiB tmpfs of the
//! test's own, filled through the GPD API until writes fail, and the last
//! free bytes taken by a file beside it. Then: a GPD create is answered
//! 503 with Retry-After and the stable code DISK_FULL (not a 500), the
//! Node's receipt PAA_SYSTEM_ERROR, a supply is refused whole (no position
//! of it written), the database is sound (`PRAGMA integrity_check`), and
//! once there is room again (the tmpfs made bigger) incasso serves as
//! before, without a restart: the supply sent again loads whole, the
//! receipt sent again is taken once.
//!
//! Mounting needs root: skipped without it; as root, a failed mount fails.

use crate::common::faults::{Answer, Client, count, nav_and_iuv, seed};
use crate::common::process::{free_port, serve_command, start_server, temp_dir};
use reqwest::Method;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const CLIENTS: usize = 4;
/// More than the 8 MiB hold: refused whole at first, loaded whole later.
const SUPPLY_ROWS: u64 = 10_000;

/// A tmpfs mounted for the test, unmounted however it ends.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "run as root, yet tmpfs could not be mounted: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_path_buf())
    }

    fn resize(&self, size: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: a server still holding the file must not keep it mounted.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Writes zeros into `path` until the file system has no room left.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 4096];
    let mut written = 0;
    while f.write_all(&block).is_ok() {
        written += block.len() as u64;
    }
    let _ = f.sync_all();
    written
}

/// A create answered as a full disk is: 503, Retry-After, DISK_FULL, an
/// Italian message that names the disk and no SQLite text.
fn assert_disk_full(a: &Answer, took: Duration) {
    assert_eq!(a.status, 503, "{}", a.text);
    assert!(a.retry_after.is_some(), "{a:?}");
    let json = a.json();
    assert_eq!(json["code"], "DISK_FULL", "{}", a.text);
    let detail = json["detail"].as_str().unwrap();
    assert!(detail.contains("spazio su disco"), "{detail}");
    assert!(!detail.to_lowercase().contains("sqlite"), "{detail}");
    assert!(took < Duration::from_secs(10), "answered after {took:?}");
}

async fn supply(client: &Client, csv: &[u8]) -> Answer {
    client
        .api(
            Method::POST,
            "/supplies?layout=incasso-csv&fileName=supply.csv",
            Some(("application/octet-stream", csv.to_vec())),
        )
        .await
        .unwrap()
}

/// The supply's final state (not LOADING).
async fn supply_end(client: &Client, id: i64) -> serde_json::Value {
    supply_end_within(client, id, 600)
        .await
        .unwrap_or_else(|| panic!("supply {id} still loading after a minute"))
}

/// The supply's final state, if it has one within `polls` tenths of a
/// second.
async fn supply_end_within(client: &Client, id: i64, polls: u32) -> Option<serde_json::Value> {
    for _ in 0..polls {
        let a = client
            .api(Method::GET, &format!("/supplies/{id}"), None)
            .await
            .unwrap();
        let state = a.json();
        if state["status"] != "LOADING" {
            return Some(state);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Sends the supply, which must be refused whole: at once (503 DISK_FULL,
/// when not even its record can be written) or by its load (FAILED, with
/// a message that names the disk). What was said.
async fn supply_refused(client: &Client, csv: &[u8]) -> String {
    let a = supply(client, csv).await;
    if a.status == 503 {
        assert_eq!(a.json()["code"], "DISK_FULL", "{}", a.text);
        return format!("503 {}", a.json()["detail"]);
    }
    assert_eq!(a.status, 202, "{}", a.text);
    let id = a.json()["supplyId"].as_i64().unwrap();
    // With no room left at all, even the supply's end (FAILED) cannot be
    // written: it stays LOADING, with none of its rows, until the file is
    // sent again once there is room, which resumes it (the caller checks
    // the rows).
    let Some(state) = supply_end_within(client, id, 300).await else {
        return "LOADING (its failure could not be written either)".into();
    };
    assert_eq!(state["status"], "FAILED", "{state}");
    let message = state["message"].as_str().unwrap_or_default().to_string();
    assert!(message.contains("spazio su disco"), "{state}");
    format!("FAILED {message}")
}

async fn integrity(url: &str) -> String {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let answer: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let _ = conn.close().await;
    answer
}

#[test]
fn a_full_disk_is_refused_clearly_and_service_resumes_when_room_returns() {
    if !is_root() {
        eprintln!("SQLite disk full: skipped (mounting a tmpfs needs root)");
        return;
    }
    let began = Instant::now();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(disk_full());
    eprintln!("SQLite disk full: {:.1} s", began.elapsed().as_secs_f64());
}

async fn disk_full() {
    let dir = temp_dir("faults-disk");
    let tmpfs = Tmpfs::mount(&dir.join("db"), "8m");
    let url = format!("sqlite://{}", tmpfs.0.join("incasso.db").display());
    let (store, key) = seed(&url).await;
    store.close().await;
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let port = free_port();
    // Its log beside the database's folder, for when this test fails.
    let mut serve = serve_command(&url, &data, port);
    serve.stderr(std::fs::File::create(dir.join("serve.log")).unwrap());
    let server = start_server(serve, port);
    let client = Client::new(port, &key);
    let csv_path = dir.join("supply.csv");
    crate::cli::write_csv(&csv_path, SUPPLY_ROWS);
    let csv = std::fs::read(&csv_path).unwrap();

    let supplied = "SELECT COUNT(*) FROM debt_positions WHERE ente = $1 AND iupd LIKE 'K-%'";
    // A supply bigger than the room left: refused whole, at once or once
    // loading fails; and incasso goes on.
    let refused = supply_refused(&client, &csv).await;
    eprintln!("a supply too big for the disk: {refused}");
    assert_eq!(count(&url, supplied).await, 0, "half a supply written");

    // Positions until the disk is full: every answer a 201 or the full
    // disk's 503.
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let client = client.clone();
        tasks.spawn(async move {
            let mut created = Vec::new();
            for i in 0..5_000 {
                let iupd = format!("FULL-{c}-{i:05}");
                let t = Instant::now();
                let a = client.create(&iupd).await.unwrap();
                if a.status == 201 {
                    created.push((iupd, nav_and_iuv(&a.json()).0));
                } else {
                    assert_disk_full(&a, t.elapsed());
                    return created;
                }
            }
            panic!("5,000 positions and the 8 MiB disk is not full");
        });
    }
    let mut created = Vec::new();
    while let Some(mine) = tasks.join_next().await {
        created.extend(mine.unwrap());
    }
    // The last free bytes taken: whatever SQLite finds to reuse in its
    // files, nothing grows any more.
    let filler = tmpfs.0.join("filler");
    let filled = fill(&filler);
    eprintln!(
        "disk full after {} positions; {filled} more bytes filled",
        created.len()
    );

    // Full: creates refused clearly, every time.
    for i in 0..3 {
        let t = Instant::now();
        let a = client.create(&format!("FULL-AGAIN-{i}")).await.unwrap();
        assert_disk_full(&a, t.elapsed());
    }
    // The Node's receipt: PAA_SYSTEM_ERROR (it sends it again later), and
    // nothing of it kept.
    let (_, nav) = created[0].clone();
    let got = client.get_payment(&nav).await.unwrap();
    assert!(
        got.is_ok() || got.fault_code() == Some("PAA_SYSTEM_ERROR"),
        "{:?}",
        got.fault
    );
    let sent = client.send_receipt("RT-FULL-1", &nav).await.unwrap();
    assert_eq!(
        sent.fault_code(),
        Some("PAA_SYSTEM_ERROR"),
        "{:?}",
        sent.fault
    );
    // A supply: refused whole.
    let refused = supply_refused(&client, &csv).await;
    eprintln!("a supply on a full disk: {refused}");
    assert_eq!(count(&url, supplied).await, 0, "half a supply written");
    let receipts = "SELECT COUNT(*) FROM receipts WHERE ente = $1";
    assert_eq!(
        count(&url, receipts).await,
        0,
        "a receipt kept of a failed write"
    );
    assert_eq!(integrity(&url).await, "ok");

    // Room again, without a restart: everything as before.
    tmpfs.resize("64m");
    let a = client.create("FULL-ROOM-1").await.unwrap();
    assert_eq!(a.status, 201, "{}", a.text);
    let sent = client.send_receipt("RT-FULL-1", &nav).await.unwrap();
    assert!(sent.is_ok(), "{:?}", sent.fault);
    let again = client.send_receipt("RT-FULL-1", &nav).await.unwrap();
    assert_eq!(again.fault_code(), Some("PAA_RECEIPT_DUPLICATA"));
    let a = supply(&client, &csv).await;
    assert_eq!(a.status, 202, "{}", a.text);
    let state = supply_end(&client, a.json()["supplyId"].as_i64().unwrap()).await;
    assert_eq!(state["status"], "LOADED", "{state}");
    assert_eq!(count(&url, supplied).await, SUPPLY_ROWS as i64);
    assert_eq!(count(&url, receipts).await, 1);
    // Every position acknowledged while the disk filled is there.
    for (iupd, nav) in created.iter().step_by(25) {
        let a = client.get_position(iupd).await.unwrap();
        assert_eq!(a.status, 200, "{iupd}: {}", a.text);
        assert_eq!(&nav_and_iuv(&a.json()).0, nav);
    }
    let all = "SELECT COUNT(*) FROM debt_positions WHERE ente = $1 AND iupd LIKE 'FULL-%'";
    assert_eq!(count(&url, all).await, created.len() as i64 + 1);
    assert_eq!(integrity(&url).await, "ok");
    drop(server);
    drop(tmpfs);
}
