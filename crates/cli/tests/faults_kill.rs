//! `kill -9` of `incasso serve` in the middle of what must be taken once
//! and whole (issue 20), on each database:
//!
//! - receipts: positions created through the GPD API and activated, their
//!   receipts sent by several Node clients at once, the process killed
//!   while receipts are in flight, started again on the same database;
//!   every receipt whose answer was lost is sent again, as the Node does,
//!   and a few answered ones too. Every position is paid once, by one
//!   stored receipt, with one PAID event, and nothing is half-written.
//! - intakes: a reporting flow of 2,000 payments and a treasury journal of
//!   2,000 movements sent together, the process killed while it takes
//!   them, started again, both sent again (twice). Each is stored once and
//!   whole, and a reconciliation, run twice, finds each flow's money once.

use crate::common::faults::{Client, count, kill_9, nav_and_iuv, runtime, seed};
use crate::common::process::{Running, free_port, serve_command, start_server, temp_dir};
use incasso_core::fdr::FlowOutcome;
use incasso_testkit::recon::{self, Movement};
use incasso_testkit::{Backend, backends, fresh_database_url};
use reqwest::Method;
use serde_json::Value;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::gpd::ENTE;

const RECEIPTS: usize = 60;
const CLIENTS: usize = 6;
/// Receipts answered before the kill: the rest are in flight or unsent.
const KILL_AFTER: usize = 20;
/// Answered receipts sent again after the restart.
const RESENT_ANSWERED: usize = 5;

const LINES: usize = 2_000;
const MOVEMENTS: usize = 2_000;
/// Rounds of a flow and a journal: the first answered (it times the
/// intake), each of the others killed a quarter, a half, three quarters
/// of that time in.
const ROUNDS: usize = 4;

/// The database of a test: a file in its folder on SQLite (the file a
/// restarted process opens again), a fresh database on PostgreSQL.
async fn database(backend: Backend, dir: &Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.join("incasso.db").display()),
        Backend::Postgres => fresh_database_url(backend).await,
    }
}

/// incasso started again on the same database and data folder, on a new
/// port (the old one may linger in TIME_WAIT); a client of it.
fn restart(url: &str, dir: &Path, client: &Client) -> (Running, Client) {
    let port = free_port();
    let server = start_server(serve_command(url, dir, port), port);
    (server, client.at(port))
}

#[test]
fn receipts_in_flight_at_a_kill_9_are_stored_once_each() {
    for backend in backends() {
        let began = Instant::now();
        runtime().block_on(receipts_across_a_kill(backend));
        eprintln!(
            "receipts across kill -9 on {backend:?}: {:.1} s",
            began.elapsed().as_secs_f64()
        );
    }
}

fn receipt_id(i: usize) -> String {
    format!("RT-KILL-{i:03}")
}

async fn receipts_across_a_kill(backend: Backend) {
    let dir = temp_dir(&format!("faults-receipts-{backend:?}"));
    let url = database(backend, &dir).await;
    let (store, key) = seed(&url).await;
    store.close().await;
    let port = free_port();
    let mut server = start_server(serve_command(&url, &dir, port), port);
    let client = Client::new(port, &key);

    // The positions, published, and each activated by the Node.
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (client, next) = (client.clone(), next.clone());
        tasks.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= RECEIPTS {
                    return mine;
                }
                let iupd = format!("KILL-RT-{i:03}");
                let a = client.create(&iupd).await.unwrap();
                assert_eq!(a.status, 201, "{iupd}: {}", a.text);
                let (nav, _) = nav_and_iuv(&a.json());
                let got = client.get_payment(&nav).await.unwrap();
                assert!(got.is_ok(), "{iupd}: {:?}", got.fault);
                mine.push((i, nav));
            }
        });
    }
    let mut navs = vec![String::new(); RECEIPTS];
    while let Some(mine) = tasks.join_next().await {
        for (i, nav) in mine.unwrap() {
            navs[i] = nav;
        }
    }
    let navs = Arc::new(navs);

    // The receipts, by several clients at once; SIGKILL once KILL_AFTER
    // are answered. A receipt's client keeps what the Node would: whether
    // it got the answer.
    let answered = Arc::new(Mutex::new(vec![false; RECEIPTS]));
    let faults = Arc::new(Mutex::new(Vec::new()));
    let acks = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (client, navs, next) = (client.clone(), navs.clone(), next.clone());
        let (answered, faults, acks) = (answered.clone(), faults.clone(), acks.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= RECEIPTS {
                    return;
                }
                match client.send_receipt(&receipt_id(i), &navs[i]).await {
                    Ok(r) if r.is_ok() => {
                        answered.lock().unwrap()[i] = true;
                        acks.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(r) => faults.lock().unwrap().push((i, r.fault)),
                    // No answer: the process died with the receipt.
                    Err(_) => {}
                }
            }
        });
    }
    while acks.load(Ordering::SeqCst) < KILL_AFTER {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    kill_9(&mut server);
    while tasks.join_next().await.is_some() {}
    let faults = faults.lock().unwrap().clone();
    assert!(
        faults.is_empty(),
        "{backend:?}: faults before the kill: {faults:?}"
    );
    let answered = answered.lock().unwrap().clone();
    let lost: Vec<usize> = (0..RECEIPTS).filter(|i| !answered[*i]).collect();
    assert!(
        !lost.is_empty() && lost.len() < RECEIPTS - KILL_AFTER + CLIENTS + 1,
        "{backend:?}: the kill came after every receipt ({} lost)",
        lost.len()
    );

    // Started again: the Node sends again each receipt it got no answer
    // for. Stored before the kill (its answer lost with the process): a
    // duplicate, which the Node takes as delivered. Not stored: taken now.
    let (_server, client) = restart(&url, &dir, &client);
    let mut stored_unanswered = 0;
    for &i in &lost {
        let r = client.send_receipt(&receipt_id(i), &navs[i]).await.unwrap();
        match r.fault_code() {
            None => {}
            Some("PAA_RECEIPT_DUPLICATA") => stored_unanswered += 1,
            other => panic!(
                "{backend:?}: receipt {i} sent again: {other:?} {:?}",
                r.fault
            ),
        }
    }
    // An answered one again (the Node's retry racing its own answer): a
    // duplicate, never a second payment.
    let again: Vec<usize> = (0..RECEIPTS)
        .filter(|i| answered[*i])
        .take(RESENT_ANSWERED)
        .collect();
    for &i in &again {
        let r = client.send_receipt(&receipt_id(i), &navs[i]).await.unwrap();
        assert_eq!(
            r.fault_code(),
            Some("PAA_RECEIPT_DUPLICATA"),
            "{backend:?}: answered receipt {i} sent again"
        );
    }
    eprintln!(
        "{backend:?}: {} receipts unanswered at the kill, {stored_unanswered} of them stored",
        lost.len()
    );

    // Every position paid once, by one receipt, told once; nothing
    // half-written: no paid option without its receipt, no receipt whose
    // option is unpaid.
    let n = RECEIPTS as i64;
    let counts = [
        (
            "receipts",
            "SELECT COUNT(*) FROM receipts WHERE ente = $1",
            n,
        ),
        (
            "notices with a receipt",
            "SELECT COUNT(DISTINCT notice_number) FROM receipts WHERE ente = $1",
            n,
        ),
        (
            "receipts with an anomaly (a double payment)",
            "SELECT COUNT(*) FROM receipts WHERE ente = $1 AND anomaly IS NOT NULL",
            0,
        ),
        (
            "paid positions",
            "SELECT COUNT(*) FROM debt_positions WHERE ente = $1 AND status = 'PAID'",
            n,
        ),
        (
            "paid options",
            "SELECT COUNT(*) FROM payment_options WHERE ente = $1 AND status = 'PO_PAID'",
            n,
        ),
        (
            "paid options without a receipt",
            "SELECT COUNT(*) FROM payment_options o WHERE o.ente = $1 AND o.status <> 'PO_UNPAID'
               AND NOT EXISTS (SELECT 1 FROM receipts r WHERE r.ente = o.ente AND r.iuv = o.iuv)",
            0,
        ),
        (
            "receipts of an unpaid option",
            "SELECT COUNT(*) FROM receipts r WHERE r.ente = $1
               AND NOT EXISTS (SELECT 1 FROM payment_options o WHERE o.ente = r.ente
                               AND o.iuv = r.iuv AND o.status = 'PO_PAID')",
            0,
        ),
        (
            "PAID events",
            "SELECT COUNT(*) FROM position_events WHERE ente = $1 AND kind = 'PAID'",
            n,
        ),
    ];
    for (what, sql, expected) in counts {
        assert_eq!(count(&url, sql).await, expected, "{backend:?}: {what}");
    }
    // And as a GPD client reads them.
    for i in [0, RECEIPTS / 2, RECEIPTS - 1] {
        let a = client
            .get_position(&format!("KILL-RT-{i:03}"))
            .await
            .unwrap();
        assert_eq!(a.json()["status"], "PAID", "{backend:?}: {}", a.text);
    }
}

#[test]
fn a_flow_and_a_journal_taken_at_a_kill_9_are_stored_once_and_whole() {
    for backend in backends() {
        let began = Instant::now();
        runtime().block_on(intakes_across_kills(backend));
        eprintln!(
            "flow and journal intake across kill -9 on {backend:?}: {:.1} s",
            began.elapsed().as_secs_f64()
        );
    }
}

fn flow_id(round: usize) -> String {
    format!("2026-10-02{}-K{round:02}", recon::PSP)
}

/// Round `round`'s flow of [`LINES`] payments (IUVs no position has, all
/// its own) and its total.
fn round_flow(round: usize) -> (String, i64) {
    let day = chrono::NaiveDate::from_ymd_opt(2026, 10, 2).unwrap();
    let payments: Vec<_> = (0..LINES)
        .map(|i| {
            recon::line(
                &format!("09{round:01}{i:014}"),
                &format!("IUR-{round}-{i}"),
                100 + (i % 50) as i64,
                FlowOutcome::Paid,
                day,
            )
        })
        .collect();
    let flow = recon::flow(ENTE, &flow_id(round), &format!("TRN-K{round:02}"), payments);
    let total = flow.declared_total.0;
    (incasso_recon::fdr::write(&flow), total)
}

/// Round `round`'s journal: the sospeso that brings the flow's money, and
/// [`MOVEMENTS`] - 1 payments of the Ente's mandati.
fn round_journal(round: usize, total: i64) -> String {
    let causale = recon::settlement_causale(&flow_id(round));
    let base = (round as u32 + 1) * 10_000;
    let mut movements = vec![Movement::sospeso(base, total, &causale)];
    movements.extend((1..MOVEMENTS as u32).map(|n| Movement {
        income: false,
        payer: "FORNITORE SRL",
        ..Movement::sospeso(base + n, 1_000 + i64::from(n), "PAGAMENTO FATTURA")
    }));
    recon::opi_journal_1_7_1(ENTE, &[("0000001", &movements)], "SEPA CREDIT TRANSFER")
}

/// Sends the flow; its intake (STORED, ALREADY_KNOWN...) or `None` without
/// an answer.
async fn post_flow(client: &Client, xml: &str) -> Option<(u16, String)> {
    let a = client
        .api(
            Method::POST,
            "/flows",
            Some(("application/xml", xml.as_bytes().to_vec())),
        )
        .await
        .ok()?;
    Some((
        a.status,
        a.json()["intake"].as_str().unwrap_or(&a.text).to_string(),
    ))
}

/// Sends the journal; the new movements it brought, `None` without an
/// answer.
async fn post_journal(client: &Client, xml: &str) -> Option<u64> {
    let a = client
        .api(
            Method::POST,
            "/treasury",
            Some(("application/xml", xml.as_bytes().to_vec())),
        )
        .await
        .ok()?;
    assert_eq!(a.status, 201, "{}", a.text);
    a.json()["newMovements"].as_u64()
}

async fn reconciliation(client: &Client) -> Value {
    let a = client
        .api(Method::POST, "/reconciliation", None)
        .await
        .unwrap();
    assert_eq!(a.status, 200, "{}", a.text);
    a.json()
}

async fn intakes_across_kills(backend: Backend) {
    let dir = temp_dir(&format!("faults-intake-{backend:?}"));
    let url = database(backend, &dir).await;
    let (store, key) = seed(&url).await;
    store.close().await;
    let port = free_port();
    let mut server = start_server(serve_command(&url, &dir, port), port);
    let mut client = Client::new(port, &key);
    let mut intake_time = Duration::ZERO;
    let mut answered_before_kill = 0;
    // Intakes the kill undid (taken whole when sent again); the others
    // unanswered were stored, their answer lost.
    let mut taken_again = 0;
    for round in 0..ROUNDS {
        let (flow, total) = round_flow(round);
        let journal = round_journal(round, total);
        let began = Instant::now();
        let flow_sent = tokio::spawn({
            let (client, flow) = (client.clone(), flow.clone());
            async move { post_flow(&client, &flow).await }
        });
        let journal_sent = tokio::spawn({
            let (client, journal) = (client.clone(), journal.clone());
            async move { post_journal(&client, &journal).await }
        });
        if round == 0 {
            let flow_taken = flow_sent.await.unwrap();
            let new = journal_sent.await.unwrap();
            intake_time = began.elapsed();
            assert_eq!(flow_taken, Some((201, "STORED".into())), "{backend:?}");
            assert_eq!(new, Some(MOVEMENTS as u64), "{backend:?}");
            continue;
        }
        tokio::time::sleep(intake_time * round as u32 / ROUNDS as u32).await;
        kill_9(&mut server);
        let flow_taken = flow_sent.await.unwrap();
        let new = journal_sent.await.unwrap();
        answered_before_kill += usize::from(flow_taken.is_some()) + usize::from(new.is_some());
        let (restarted, again) = restart(&url, &dir, &client);
        (server, client) = (restarted, again);
        // Sent again: taken now if the kill lost it, known if it was
        // stored; never a part of it.
        let resent = post_flow(&client, &flow).await.unwrap();
        match &flow_taken {
            Some(first) => {
                assert_eq!(first, &(201, "STORED".into()), "{backend:?}");
                assert_eq!(resent, (200, "ALREADY_KNOWN".into()), "{backend:?}");
            }
            None => {
                assert!(
                    resent == (201, "STORED".into()) || resent == (200, "ALREADY_KNOWN".into()),
                    "{backend:?}: {resent:?}"
                );
                taken_again += usize::from(resent.0 == 201);
            }
        }
        let new_again = post_journal(&client, &journal).await.unwrap();
        match new {
            Some(first) => {
                assert_eq!(first, MOVEMENTS as u64, "{backend:?}");
                assert_eq!(new_again, 0, "{backend:?}");
            }
            None => {
                assert!(
                    new_again == 0 || new_again == MOVEMENTS as u64,
                    "{backend:?}: half a journal was kept: {new_again} new movements of {MOVEMENTS}"
                );
                taken_again += usize::from(new_again > 0);
            }
        }
        // Once more: nothing new.
        assert_eq!(
            post_flow(&client, &flow).await.unwrap(),
            (200, "ALREADY_KNOWN".into())
        );
        assert_eq!(post_journal(&client, &journal).await.unwrap(), 0);
        if round == 1 {
            // A reconciliation between kills: the later runs replace it.
            reconciliation(&client).await;
        }
    }
    eprintln!(
        "{backend:?}: intake {intake_time:?}; of {} intakes killed, {answered_before_kill} \
         answered before the kill, {taken_again} undone by it",
        2 * (ROUNDS - 1)
    );

    // Each flow once and whole, each movement once.
    let flows = client.api(Method::GET, "/flows", None).await.unwrap();
    let flows = flows.json();
    let flows = flows.as_array().unwrap();
    assert_eq!(flows.len(), ROUNDS, "{backend:?}: {flows:?}");
    for f in flows {
        assert_eq!(f["lines"], LINES, "{backend:?}: {f}");
        assert_eq!(f["linesTotal"], f["declaredTotal"], "{backend:?}: {f}");
        assert_eq!(f["problems"], "", "{backend:?}: {f}");
    }
    let rounds = ROUNDS as i64;
    for (what, sql, expected) in [
        (
            "flows",
            "SELECT COUNT(*) FROM reporting_flows WHERE ente = $1",
            rounds,
        ),
        (
            "flow lines",
            "SELECT COUNT(*) FROM flow_payments WHERE ente = $1",
            rounds * LINES as i64,
        ),
        (
            "movements",
            "SELECT COUNT(*) FROM treasury_movements WHERE ente = $1",
            rounds * MOVEMENTS as i64,
        ),
    ] {
        assert_eq!(count(&url, sql).await, expected, "{backend:?}: {what}");
    }
    // The reconciliation finds each flow's money once, and says the same
    // when run again.
    let first = reconciliation(&client).await;
    assert_eq!(first["flows"], ROUNDS, "{backend:?}: {first}");
    assert_eq!(first["matched"], ROUNDS, "{backend:?}: {first}");
    let classified: u64 = first["linesByClass"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(classified, (ROUNDS * LINES) as u64, "{backend:?}: {first}");
    assert_eq!(reconciliation(&client).await, first, "{backend:?}");
    drop(server);
}
