//! `kill -9` of the `incasso serve` that is loading a Digit BUS supply
//! uploaded over HTTP, on each database and for both kinds of layout:
//!
//! - all or nothing (`incasso-csv`): one transaction. Process A is killed
//!   once it has worked on the load for a while (the database shows nothing
//!   of it before its commit): the supply is left LOADING, nothing of it
//!   written.
//! - resumable (the Ente's own `tributi-parziale`: `incasso-csv` loading the
//!   valid rows and committing every 2,000): A is killed once a quarter of
//!   the file is committed: the supply is left LOADING at that checkpoint,
//!   with exactly the positions it counts.
//!
//! No process takes an abandoned supply over by itself: the file's bytes
//! were in A's memory only. Its claim (an OS lock) died with A, so the
//! client sends the same file again, to process B, as an operator does
//! after a crash: B answers with the same supply and loads it whole (all
//! or nothing) or from the checkpoint (resumable). Afterwards, read in the
//! database: one supply, accepted, its counters adding up; each key of the
//! file one position (the refused rows' none), as many positions as good
//! rows, no IUV and no notice number twice, each refused row reported once;
//! the outcome file lists every row with the notice number stored for it;
//! the file sent once more is refused as loaded.
//!
//! On PostgreSQL B runs beside A from the start, as behind a load balancer,
//! and is refused the file while A loads it (`SUPPLY_IN_PROGRESS`); on
//! SQLite, one process per file (docs/DEPLOY.md), B starts on the file once
//! A is dead.
//!
//! On PostgreSQL the all-or-nothing case once crawled: B's ANALYZE, with
//! only A's rolled-back rows in the tables, recorded them empty over those
//! pages, and every look-up by key and foreign-key check read the whole
//! Ente (see `Store::bulk`): B took 53 s for these 30,000 rows instead of
//! 8, and a 40,000-row supply did not load in a minute.

use crate::common::faults::{
    Answer, Client, Scratch, count, cpu_time, kill_9, runtime, seed, strings,
};
use crate::common::process::{Running, free_port, serve_command, start_server};
use incasso_testkit::{Backend, backends};
use reqwest::Method;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// Rows of the supply, one position each.
const ROWS: u64 = 30_000;
/// The resumable layout commits every this many rows.
const CHECKPOINT_ROWS: u64 = 2_000;
/// The resumable load is killed once its checkpoint is past this line.
const KILL_PAST_LINE: i64 = (ROWS / 4) as i64;
/// B finishes the supply within this: about 8 s on PostgreSQL on two busy
/// cores (debug build), 2 s on SQLite. A load whose look-ups read the whole
/// Ente (see the module's comment) took 53 s.
const FINISH_WITHIN: Duration = Duration::from_secs(30);
/// The all-or-nothing load, which shows nothing in the database before its
/// commit, is killed once A has spent this much CPU time on it (a few
/// thousand rows written, uncommitted; the whole load takes several times
/// more).
const KILL_AFTER_CPU: Duration = Duration::from_millis(700);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    AllOrNothing,
    Resumable,
}

impl Kind {
    fn layout(self) -> &'static str {
        match self {
            Kind::AllOrNothing => "incasso-csv",
            Kind::Resumable => "tributi-parziale",
        }
    }

    /// Rows of the resumable supply refused (an unknown service): one in
    /// its first checkpoint, committed before the kill, one near its end,
    /// read after it. The all-or-nothing one has none (one would refuse it
    /// whole).
    fn refused(self) -> Vec<u64> {
        match self {
            Kind::AllOrNothing => Vec::new(),
            Kind::Resumable => vec![100, ROWS - 50],
        }
    }
}

fn key(i: u64) -> String {
    format!("K-{i:07}")
}

/// The file's line of row `i` (the header is line 1).
fn line(i: u64) -> i64 {
    i as i64 + 2
}

#[test]
fn a_supply_killed_mid_load_is_finished_by_another_process_once_and_whole() {
    for backend in backends() {
        let began = Instant::now();
        for kind in [Kind::AllOrNothing, Kind::Resumable] {
            let one = Instant::now();
            runtime().block_on(supply_across_a_kill(backend, kind));
            eprintln!(
                "{kind:?} supply across kill -9 on {backend:?}: {:.1} s",
                one.elapsed().as_secs_f64()
            );
        }
        eprintln!(
            "supplies across kill -9 on {backend:?}: {:.1} s",
            began.elapsed().as_secs_f64()
        );
    }
}

/// [`ROWS`] rows in `incasso-csv`'s columns, those of [`Kind::refused`]
/// of a service the catalogue does not have.
fn supply_file(kind: Kind, path: &std::path::Path) -> Vec<u8> {
    crate::cli::write_csv(path, ROWS);
    let mut text = std::fs::read_to_string(path).unwrap();
    for i in kind.refused() {
        let row = format!("{};TARI;", key(i));
        assert!(text.contains(&row));
        text = text.replacen(&row, &format!("{};SCONOSCIUTO;", key(i)), 1);
    }
    text.into_bytes()
}

/// The Ente's own layout: `incasso-csv` loading the valid rows, committing
/// every [`CHECKPOINT_ROWS`].
fn resumable_layout() -> String {
    incasso_bus::builtin::source("incasso-csv")
        .unwrap()
        .replace("name = \"incasso-csv\"", "name = \"tributi-parziale\"")
        .replace(
            "all_or_nothing = true",
            &format!("all_or_nothing = false\ncheckpoint_rows = {CHECKPOINT_ROWS}"),
        )
}

async fn upload(client: &Client, kind: Kind, bytes: &[u8]) -> Answer {
    client
        .api(
            Method::POST,
            &format!("/supplies?layout={}&fileName=tributi.csv", kind.layout()),
            Some(("application/octet-stream", bytes.to_vec())),
        )
        .await
        .unwrap()
}

/// The supply's status, checkpoint (`resume_line`) and rows loaded, as
/// stored.
async fn stored_state(url: &str, id: i64) -> (String, i64, i64) {
    let row = strings(
        url,
        &format!(
            "SELECT status || ';' || CAST(resume_line AS TEXT) || ';' || CAST(rows_loaded AS TEXT)
             FROM supplies WHERE ente = $1 AND id = {id}"
        ),
    )
    .await;
    let parts: Vec<&str> = row[0].split(';').collect();
    (
        parts[0].to_string(),
        parts[1].parse().unwrap(),
        parts[2].parse().unwrap(),
    )
}

fn start(url: &str, scratch: &Scratch, name: &str, key: &str) -> (Running, Client) {
    let port = free_port();
    let server = start_server(serve_command(url, &scratch.data_dir(name), port), port);
    (server, Client::new(port, key))
}

async fn supply_across_a_kill(backend: Backend, kind: Kind) {
    let scratch = Scratch::new(backend, &format!("faults-supply-{kind:?}-{backend:?}")).await;
    let url = scratch.url.clone();
    let (store, api_key) = seed(&url).await;
    store.close().await;
    let csv = supply_file(kind, &scratch.dir.join("tributi.csv"));
    let refused = kind.refused();
    let good = ROWS - refused.len() as u64;

    let (mut a, client_a) = start(&url, &scratch, "a", &api_key);
    // PostgreSQL: B beside A, as behind a load balancer.
    let mut b = (backend == Backend::Postgres).then(|| start(&url, &scratch, "b", &api_key));
    if kind == Kind::Resumable {
        let put = client_a
            .api(
                Method::PUT,
                "/layouts/tributi-parziale",
                Some(("application/toml", resumable_layout().into_bytes())),
            )
            .await
            .unwrap();
        assert_eq!(put.status, 201, "{}", put.text);
    }

    // A accepts the supply and loads it in the background.
    let accepted = upload(&client_a, kind, &csv).await;
    let cpu_before = cpu_time(a.id());
    assert_eq!(accepted.status, 202, "{backend:?}: {}", accepted.text);
    let id = accepted.json()["supplyId"].as_i64().unwrap();
    assert_eq!(accepted.json()["resumed"], false, "{}", accepted.text);
    // B may not take it while A holds it.
    if let Some((_, client_b)) = &b {
        let busy = upload(client_b, kind, &csv).await;
        assert_eq!(
            (busy.status, busy.json()["code"].as_str()),
            (409, Some("SUPPLY_IN_PROGRESS")),
            "{backend:?}: the file sent to B while A loads it: {}",
            busy.text
        );
    }

    // Killed in the middle: the resumable load once a quarter of it is
    // committed; the all-or-nothing one, which shows nothing before its
    // commit, once A has worked on it for a while.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut polls = 0;
    loop {
        let (status, checkpoint, _) = stored_state(&url, id).await;
        assert_eq!(
            status, "LOADING",
            "{backend:?} {kind:?}: the load ended before it could be killed: make the file bigger"
        );
        let cpu = cpu_time(a.id()) - cpu_before;
        let in_the_middle = match kind {
            Kind::AllOrNothing => cpu >= KILL_AFTER_CPU,
            Kind::Resumable => checkpoint >= KILL_PAST_LINE,
        };
        if in_the_middle {
            kill_9(&mut a);
            eprintln!(
                "{backend:?} {kind:?}: killed after {polls} polls, {} ms of A's CPU on the load, \
                 checkpoint at line {checkpoint}",
                cpu.as_millis()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{backend:?} {kind:?}: no progress in 30 s (checkpoint {checkpoint}, {cpu:?} of CPU)"
        );
        polls += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // What A left: the supply LOADING, with no loader; all or nothing,
    // nothing of it; resumable, exactly what its checkpoint counts.
    let (status, checkpoint, rows_loaded) = stored_state(&url, id).await;
    assert_eq!(
        status, "LOADING",
        "{backend:?} {kind:?}: killed after its end"
    );
    let committed = count(&url, "SELECT COUNT(*) FROM debt_positions WHERE ente = $1").await;
    match kind {
        Kind::AllOrNothing => {
            assert_eq!(
                (committed, checkpoint, rows_loaded),
                (0, 0, 0),
                "{backend:?}: an all-or-nothing supply killed halfway left positions"
            );
        }
        Kind::Resumable => {
            let refused_before = refused.iter().filter(|i| line(**i) <= checkpoint).count();
            assert!(
                checkpoint >= KILL_PAST_LINE && checkpoint < line(ROWS - 1),
                "{backend:?}: checkpoint {checkpoint}"
            );
            assert_eq!(
                (committed, rows_loaded),
                (checkpoint - 1 - refused_before as i64, committed),
                "{backend:?}: the positions committed are not those of the checkpoint \
                 (line {checkpoint})"
            );
        }
    }

    // What a clerk reads once the sweeper of abandoned loads has run (each
    // process runs it every minute; called here to not wait for it): the
    // supply interrupted where A's last commit left it, and what to do. On
    // PostgreSQL, A's claim lingers until the server notices A is gone.
    let store = incasso_store::Store::connect(&url).await.unwrap();
    let swept = Instant::now();
    loop {
        let round = incasso_app::supply::mark_abandoned(&store).await.unwrap();
        assert!(
            round.failed.is_empty(),
            "{backend:?} {kind:?}: {:?}",
            round.failed
        );
        let marked = round.marked;
        if !marked.is_empty() {
            assert_eq!(marked, vec![id], "{backend:?} {kind:?}");
            break;
        }
        assert!(
            swept.elapsed() < Duration::from_secs(10),
            "{backend:?} {kind:?}: A's supply still claimed 10 s after A died"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    store.close().await;
    let (status, after, _) = stored_state(&url, id).await;
    assert_eq!(
        (status.as_str(), after),
        ("INTERRUPTED", checkpoint),
        "{backend:?} {kind:?}: the abandoned supply"
    );
    let message = strings(
        &url,
        &format!("SELECT message FROM supplies WHERE ente = $1 AND id = {id}"),
    )
    .await;
    let saved = match kind {
        Kind::AllOrNothing => "nulla è stato salvato".to_string(),
        Kind::Resumable => format!("salvato fino alla riga {checkpoint}"),
    };
    assert!(
        message[0].contains(&saved) && message[0].contains("rinviare il file"),
        "{backend:?} {kind:?}: {message:?}"
    );

    // The client sends the same file again, to B (on SQLite started now,
    // on the file A left). Refused while A's claim lingers (PostgreSQL
    // ends A's sessions when it notices): sent again shortly, as a client
    // does with a 409 that says "in progress".
    let (_b, client_b) = match b.take() {
        Some(b) => b,
        None => start(&url, &scratch, "b", &api_key),
    };
    let sent_again = Instant::now();
    let mut in_progress = 0;
    let again = loop {
        let again = upload(&client_b, kind, &csv).await;
        if again.status == 409
            && again.json()["code"] == "SUPPLY_IN_PROGRESS"
            && sent_again.elapsed() < Duration::from_secs(10)
        {
            in_progress += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        break again;
    };
    assert_eq!(again.status, 202, "{backend:?} {kind:?}: {}", again.text);
    let again = again.json();
    assert_eq!(
        again["supplyId"], id,
        "{backend:?} {kind:?}: another supply instead of the same: {again}"
    );
    assert_eq!(
        again["resumed"],
        kind == Kind::Resumable,
        "{backend:?} {kind:?}: {again}"
    );
    let resumed_at = Instant::now();
    let supply = loop {
        let s = client_b
            .api(Method::GET, &format!("/supplies/{id}"), None)
            .await
            .unwrap();
        assert_eq!(s.status, 200, "{}", s.text);
        let s = s.json();
        if s["status"] != "LOADING" {
            break s;
        }
        assert!(
            resumed_at.elapsed() < FINISH_WITHIN,
            "{backend:?} {kind:?}: B did not finish the supply in {FINISH_WITHIN:?}: {s}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "{backend:?} {kind:?}: sent again after {in_progress} SUPPLY_IN_PROGRESS, \
         finished by B in {:.1} s",
        resumed_at.elapsed().as_secs_f64()
    );

    // The supply: once, accepted, its counters adding up.
    let status = if refused.is_empty() {
        "LOADED"
    } else {
        "LOADED_WITH_ERRORS"
    };
    assert_eq!(supply["status"], status, "{backend:?} {kind:?}: {supply}");
    assert_eq!(supply["accepted"], true, "{supply}");
    assert_eq!(supply["rowsRead"], ROWS, "{supply}");
    assert_eq!(supply["rowsLoaded"], good, "{supply}");
    assert_eq!(supply["rowsRejected"], refused.len(), "{supply}");
    assert_eq!(supply["positionsCreated"], good, "{supply}");
    assert_eq!(supply["positionsUpdated"], 0, "{supply}");
    assert_eq!(supply["positionsCancelled"], 0, "{supply}");
    let n = |v: u64| v as i64;
    let on = |sql: &str| sql.replace("{id}", &id.to_string());
    for (what, sql, expected) in [
        (
            "supplies",
            on("SELECT COUNT(*) FROM supplies WHERE ente = $1"),
            1,
        ),
        (
            "accepted supplies of the file",
            on("SELECT COUNT(*) FROM supplies WHERE ente = $1 AND id = {id} AND accepted = 1"),
            1,
        ),
        (
            "rows read = loaded + refused",
            on("SELECT COUNT(*) FROM supplies WHERE ente = $1 AND id = {id}
                  AND rows_read = rows_loaded + rows_rejected
                  AND positions_created = rows_loaded AND resume_line = 0"),
            1,
        ),
        (
            "row errors reported",
            on(
                "SELECT COUNT(*) FROM supply_errors e JOIN supplies s ON s.id = e.supply_id
                WHERE s.ente = $1 AND s.id = {id}",
            ),
            n(refused.len() as u64),
        ),
        (
            "lines reported",
            on("SELECT COUNT(DISTINCT e.line) FROM supply_errors e
                JOIN supplies s ON s.id = e.supply_id WHERE s.ente = $1 AND s.id = {id}"),
            n(refused.len() as u64),
        ),
        (
            "positions",
            on("SELECT COUNT(*) FROM debt_positions WHERE ente = $1"),
            n(good),
        ),
        (
            "keys",
            on("SELECT COUNT(DISTINCT iupd) FROM debt_positions WHERE ente = $1"),
            n(good),
        ),
        (
            "positions of the supply",
            on("SELECT COUNT(*) FROM debt_positions WHERE ente = $1 AND supply_id = {id}"),
            n(good),
        ),
        (
            "payment options",
            on("SELECT COUNT(*) FROM payment_options WHERE ente = $1"),
            n(good),
        ),
        (
            "IUVs",
            on("SELECT COUNT(DISTINCT iuv) FROM payment_options WHERE ente = $1"),
            n(good),
        ),
        (
            "notice numbers",
            on("SELECT COUNT(DISTINCT notice_number) FROM payment_options WHERE ente = $1"),
            n(good),
        ),
        (
            "positions without their option",
            on("SELECT COUNT(*) FROM debt_positions p WHERE p.ente = $1
                AND NOT EXISTS (SELECT 1 FROM payment_options o WHERE o.position_id = p.id)"),
            0,
        ),
        (
            "options without their transfer",
            on(
                "SELECT COUNT(*) FROM payment_options o WHERE o.ente = $1
                AND NOT EXISTS (SELECT 1 FROM transfers t WHERE t.ente = o.ente AND t.iuv = o.iuv)",
            ),
            0,
        ),
    ] {
        assert_eq!(
            count(&url, &sql).await,
            expected,
            "{backend:?} {kind:?}: {what}"
        );
    }
    // Each good key of the file one position with its one notice, the
    // refused ones none.
    let stored: Vec<String> = strings(
        &url,
        "SELECT p.iupd || ';' || o.iuv || ';' || o.notice_number
         FROM debt_positions p JOIN payment_options o ON o.position_id = p.id
         WHERE p.ente = $1",
    )
    .await;
    let mut by_key: HashMap<String, (String, String)> = HashMap::new();
    for s in &stored {
        let f: Vec<&str> = s.split(';').collect();
        let was = by_key.insert(f[0].to_string(), (f[1].to_string(), f[2].to_string()));
        assert!(was.is_none(), "{backend:?} {kind:?}: {} twice", f[0]);
    }
    let expected: HashSet<String> = (0..ROWS)
        .filter(|i| !refused.contains(i))
        .map(key)
        .collect();
    let keys: HashSet<String> = by_key.keys().cloned().collect();
    assert_eq!(
        keys.len(),
        expected.len(),
        "{backend:?} {kind:?}: keys missing {:?}, not in the file {:?}",
        expected.difference(&keys).take(5).collect::<Vec<_>>(),
        keys.difference(&expected).take(5).collect::<Vec<_>>()
    );
    assert_eq!(keys, expected, "{backend:?} {kind:?}");

    // The outcome: every row of the file, in order, each loaded one with
    // the IUV and notice number stored for its key (those committed by A
    // read back), the refused ones with none.
    let outcome = client_b
        .api(Method::GET, &format!("/supplies/{id}/outcome"), None)
        .await
        .unwrap();
    assert_eq!(outcome.status, 200, "{}", outcome.text);
    let mut lines = outcome.text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(';').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (iuv_at, nav_at) = (column("iuv"), column("numero_avviso"));
    let mut rows = 0;
    for (i, l) in lines.enumerate() {
        let f: Vec<&str> = l.split(';').collect();
        assert_eq!(f[0], key(i as u64), "{backend:?} {kind:?}: outcome row {i}");
        let numbers = (f[iuv_at].to_string(), f[nav_at].to_string());
        match by_key.get(f[0]) {
            Some(stored) => assert_eq!(&numbers, stored, "{backend:?} {kind:?}: {l}"),
            None => assert_eq!(numbers, (String::new(), String::new()), "{l}"),
        }
        rows += 1;
    }
    assert_eq!(rows, ROWS, "{backend:?} {kind:?}: rows in the outcome");

    // Sent once more: loaded already, never twice.
    let third = upload(&client_b, kind, &csv).await;
    assert_eq!(
        (third.status, third.json()["code"].as_str()),
        (409, Some("DUPLICATE_SUPPLY")),
        "{backend:?} {kind:?}: {}",
        third.text
    );
    assert_eq!(
        count(&url, "SELECT COUNT(*) FROM debt_positions WHERE ente = $1").await,
        n(good)
    );
}
