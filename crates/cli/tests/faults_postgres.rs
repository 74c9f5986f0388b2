//! PostgreSQL stopped and started again under load, for real (issue 20):
//! not the shared cluster, which other tests use at the same time, but a
//! private server this test makes (initdb into a scratch folder, its own
//! port and socket folder) and removes however the test ends. `incasso
//! serve` runs on it while several clients create positions through the
//! GPD API and play the Node (verify, getPayment); PostgreSQL is stopped
//! (`pg_ctl stop -m fast`: sessions ended, as a restart ends them) with
//! the load going on, then started again. While it is down every request
//! is answered at once, within the pool's wait and the Node's deadline:
//! HTTP 503 with Retry-After, the Node's PAA_SYSTEM_ERROR, never a 500 nor
//! a hang. Once it is back incasso serves again by itself, and every
//! position acknowledged with a 201 before the stop is there.
//!
//! Needs root (to run PostgreSQL's tools as `postgres`) and PostgreSQL's
//! binaries; skipped without them, unless `INCASSO_REQUIRE_PG=1`.

use crate::common::faults::{Answer, Client, count, nav_and_iuv, seed};
use crate::common::process::{free_port, serve_command, start_server, temp_dir};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CLIENTS: usize = 4;
/// Load before the stop, with PostgreSQL down, and after it is back.
/// Down, a request waits up to the pool's 5 s for a connection: long
/// enough for each client to be answered twice.
const BEFORE: Duration = Duration::from_secs(3);
const DOWN: Duration = Duration::from_secs(12);
const AFTER: Duration = Duration::from_secs(3);
/// How soon a request must be answered while PostgreSQL is down: the
/// pool's wait for a connection, and room for a loaded machine; the
/// Node's own door gives up at 8 s.
fn prompt() -> Duration {
    incasso_store::PG_ACQUIRE_TIMEOUT + Duration::from_secs(3)
}

/// A PostgreSQL server of this test's own, stopped and removed on drop.
struct PrivatePostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

/// Runs `program` with `args` as the `postgres` OS user; its output when
/// it fails.
fn as_postgres(program: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(program)
        .args(args)
        .output()
        .map_err(|e| format!("runuser: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} {args:?}: {}{}",
            program.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The newest PostgreSQL's binaries, when this test can use them: run as
/// root (to become `postgres`), the `postgres` user there.
fn postgres_binaries() -> Result<PathBuf, String> {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| e.to_string())?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Err("not run as root".into());
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| "no /usr/lib/postgresql".to_string())?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    let (_, bin) = versions.pop().ok_or("no PostgreSQL binaries (initdb)")?;
    let user = Command::new("id")
        .arg("postgres")
        .output()
        .map_err(|e| e.to_string())?;
    if !user.status.success() {
        return Err("no postgres OS user".into());
    }
    Ok(bin)
}

impl PrivatePostgres {
    fn create(bin: PathBuf) -> Result<PrivatePostgres, String> {
        // Under /tmp itself, not the suite's TMPDIR: scripts/test.sh makes
        // that folder 0700 for root, and the postgres user could not reach
        // a data folder inside it.
        let dir = std::path::Path::new("/tmp").join(format!(
            "incasso-cli-faults-private-postgres-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let pg = PrivatePostgres {
            bin,
            dir,
            port: free_port(),
        };
        let chown = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&pg.dir)
            .status()
            .map_err(|e| e.to_string())?;
        if !chown.success() {
            return Err("chown of the scratch folder failed".into());
        }
        let data = pg.data();
        as_postgres(
            &pg.bin.join("initdb"),
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
        )?;
        pg.start()?;
        Ok(pg)
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), String> {
        let data = self.data();
        let log = self.dir.join("postgresql.log").display().to_string();
        let mut all = vec!["-D", &data, "-l", &log, "-w", "-t", "60"];
        all.extend_from_slice(args);
        as_postgres(&self.bin.join("pg_ctl"), &all)
    }

    /// On its own port, its socket in the scratch folder (not the shared
    /// cluster's), TCP on the loopback only; no fsync: the test stops it
    /// cleanly, and a crash of the machine loses nothing worth keeping.
    fn start(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60",
            self.port,
            self.dir.display()
        );
        self.pg_ctl(&["-o", &options, "start"])
    }

    fn stop(&self, mode: &str) -> Result<(), String> {
        self.pg_ctl(&["-m", mode, "stop"])
    }

    fn url(&self, user: &str, database: &str) -> String {
        format!(
            "postgres://{user}:{user}@127.0.0.1:{}/{database}",
            self.port
        )
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // Already stopped (a failed assertion while it was down): says so
        // and does nothing.
        let _ = self.stop("immediate");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What one request of the load got, and when.
#[derive(Debug)]
struct Outcome {
    began: Instant,
    took: Duration,
    what: &'static str,
    /// "201", "503 DATABASE_UNAVAILABLE", "OK", "PAA_SYSTEM_ERROR", or
    /// what else came (the test fails on it).
    answer: String,
    /// A 503 said when to try again.
    retry_after: bool,
}

fn http_outcome(a: &Result<Answer, String>) -> (String, bool) {
    match a {
        Ok(a) if a.status == 503 => (
            format!("503 {}", a.json()["code"].as_str().unwrap_or_default()),
            a.retry_after.is_some(),
        ),
        Ok(a) if a.status == 201 => ("201".into(), false),
        Ok(a) => (format!("{} {}", a.status, a.text), false),
        Err(e) => (format!("no answer: {e}"), false),
    }
}

fn soap_outcome(r: &Result<incasso_pagopa::wire::node::Response, String>) -> String {
    match r {
        Ok(r) => r.fault_code().unwrap_or("OK").to_string(),
        Err(e) => format!("no answer: {e}"),
    }
}

#[test]
fn postgresql_restarted_under_load_is_answered_at_once_and_nothing_acknowledged_is_lost() {
    let bin = match postgres_binaries() {
        Ok(bin) => bin,
        Err(why) if std::env::var("INCASSO_REQUIRE_PG").is_ok_and(|v| v == "1") => {
            panic!("INCASSO_REQUIRE_PG=1 but a private PostgreSQL cannot be run: {why}")
        }
        Err(why) => {
            eprintln!("PostgreSQL restarted under load: skipped ({why})");
            return;
        }
    };
    let began = Instant::now();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(restart_under_load(bin));
    eprintln!(
        "PostgreSQL restarted under load: {:.1} s",
        began.elapsed().as_secs_f64()
    );
}

async fn restart_under_load(bin: PathBuf) {
    let pg = PrivatePostgres::create(bin).unwrap();
    {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut admin = sqlx::AnyConnection::connect(&pg.url("postgres", "postgres"))
            .await
            .unwrap();
        // One statement each: CREATE DATABASE runs outside a transaction,
        // and several statements in one go make one.
        for sql in [
            "CREATE ROLE incasso LOGIN PASSWORD 'incasso'",
            "CREATE DATABASE incasso OWNER incasso",
        ] {
            sqlx::raw_sql(sql).execute(&mut admin).await.unwrap();
        }
        let _ = admin.close().await;
    }
    let url = pg.url("incasso", "incasso");
    let (store, key) = seed(&url).await;
    store.close().await;
    let dir = temp_dir("faults-postgres-serve");
    let port = free_port();
    let _server = start_server(serve_command(&url, &dir, port), port);
    let client = Client::new(port, &key);

    // The load: half the clients create positions and, as the Node, verify
    // and activate each new one; the other half are the Node verifying
    // notices made earlier, one after the other.
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicUsize::new(0));
    let outcomes = Arc::new(Mutex::new(Vec::<Outcome>::new()));
    let created = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let mut load = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let (client, stop, next) = (client.clone(), stop.clone(), next.clone());
        let (outcomes, created) = (outcomes.clone(), created.clone());
        load.spawn(async move {
            let record = |began: Instant, what, answer, retry_after| {
                outcomes.lock().unwrap().push(Outcome {
                    began,
                    took: began.elapsed(),
                    what,
                    answer,
                    retry_after,
                })
            };
            while !stop.load(Ordering::SeqCst) {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if c % 2 == 1 {
                    let known = {
                        let made = created.lock().unwrap();
                        made.get(i % made.len().max(1)).map(|(_, nav)| nav.clone())
                    };
                    if let Some(nav) = known {
                        let t = Instant::now();
                        let v = client.verify(&nav).await;
                        record(t, "verify", soap_outcome(&v), false);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                let iupd = format!("PG-LOAD-{i:05}");
                let t = Instant::now();
                let a = client.create(&iupd).await;
                let (answer, retry_after) = http_outcome(&a);
                record(t, "create", answer, retry_after);
                if let Ok(a) = &a
                    && a.status == 201
                {
                    let (nav, _) = nav_and_iuv(&a.json());
                    created.lock().unwrap().push((iupd, nav.clone()));
                    let t = Instant::now();
                    let v = client.verify(&nav).await;
                    record(t, "verify", soap_outcome(&v), false);
                    let t = Instant::now();
                    let g = client.get_payment(&nav).await;
                    record(t, "getPayment", soap_outcome(&g), false);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }

    tokio::time::sleep(BEFORE).await;
    let acknowledged_before: Vec<(String, String)> = created.lock().unwrap().clone();
    let stopping = Instant::now();
    pg.stop("fast").unwrap();
    let stopped = Instant::now();
    tokio::time::sleep(DOWN).await;
    let starting = Instant::now();
    pg.start().unwrap();
    let started = Instant::now();
    // Back without restarting incasso: the first create answered 201.
    let back = loop {
        let a = client
            .create(&format!("PG-BACK-{}", started.elapsed().as_millis()))
            .await;
        if matches!(&a, Ok(a) if a.status == 201) {
            break Instant::now();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "incasso did not serve again once PostgreSQL was back: {a:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(AFTER).await;
    stop.store(true, Ordering::SeqCst);
    while let Some(done) = load.join_next().await {
        done.unwrap();
    }
    eprintln!(
        "stop took {:?}, start {:?}, serving again {:?} after the start",
        stopped - stopping,
        started - starting,
        back - started
    );

    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    // Whenever it came, every answer is an answer: 201 or 503 with
    // Retry-After to a client, OK or PAA_SYSTEM_ERROR to the Node.
    for o in &outcomes {
        let known = match o.what {
            "create" => o.answer == "201" || o.answer == "503 DATABASE_UNAVAILABLE",
            _ => o.answer == "OK" || o.answer == "PAA_SYSTEM_ERROR",
        };
        assert!(known, "{o:?}");
        if o.answer.starts_with("503") {
            assert!(o.retry_after, "503 without Retry-After: {o:?}");
        }
        if o.answer != "201" && o.answer != "OK" {
            assert!(o.took < prompt(), "answered late: {o:?}");
        }
    }
    // While it was down, nothing but "unavailable".
    let down: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.began > stopped && o.began + o.took < starting)
        .collect();
    for o in &down {
        assert!(
            o.answer == "503 DATABASE_UNAVAILABLE" || o.answer == "PAA_SYSTEM_ERROR",
            "served while PostgreSQL was down? {o:?}"
        );
    }
    let down_creates = down.iter().filter(|o| o.what == "create").count();
    let down_node = down.len() - down_creates;
    assert!(
        down_creates >= CLIENTS / 2 && down_node >= CLIENTS / 2,
        "too little load while PostgreSQL was down: {down_creates} creates, {down_node} Node calls"
    );
    // Once it was back (a second for every client's request in flight to
    // come round), nothing but answers.
    let after: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.began > back + Duration::from_secs(1))
        .collect();
    assert!(!after.is_empty(), "no load after PostgreSQL was back");
    for o in &after {
        assert!(
            o.answer == "201" || o.answer == "OK",
            "after the restart: {o:?}"
        );
    }
    eprintln!(
        "{} requests: {} while PostgreSQL was down, {} after it was back",
        outcomes.len(),
        down.len(),
        after.len()
    );

    // Nothing acknowledged was lost: every 201, before the stop and since,
    // is there whole (a position with its notice).
    let created = created.lock().unwrap().clone();
    assert!(acknowledged_before.len() >= CLIENTS);
    for (iupd, nav) in &created {
        let a = client.get_position(iupd).await.unwrap();
        assert_eq!(a.status, 200, "{iupd} acknowledged, then lost: {}", a.text);
        assert_eq!(&nav_and_iuv(&a.json()).0, nav);
    }
    let positions = count(
        &url,
        "SELECT COUNT(*) FROM debt_positions d WHERE d.ente = $1
           AND NOT EXISTS (SELECT 1 FROM payment_options o WHERE o.position_id = d.id)",
    )
    .await;
    assert_eq!(positions, 0, "a position without its notice");
}
