//! Webhooks across a `kill -9` of incasso, on each database: `serve
//! --demo` runs as a process; a webhook receiver (the simulator's, run by
//! this test so that it outlives incasso) is registered through the API
//! and set to fail its first deliveries and to answer slowly; notices are
//! paid through the simulated Node (installments of one position in turn,
//! and single notices); incasso is killed while deliveries are failing or
//! on their way, started again on the same database, more notices are
//! paid, and the receiver must end with every payment's event, at least
//! once, the first arrivals of each position's events in order.

use crate::common::process;

use incasso_simulator::webhooks::{ReceiverReport, ReceiverSettings};
use incasso_simulator::{Route, Settings, Simulator};
use incasso_testkit::{Backend, backends};
use process::{Running, free_port, incasso, temp_dir, wait_for_health};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn webhooks_survive_a_kill_9_in_order_and_none_lost() {
    for backend in backends() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run(backend));
    }
}

fn start(dir: &Path, port: u16, db: &Option<String>) -> Running {
    let mut cmd = incasso();
    cmd.args(["serve", "--demo", "--bind", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir)
        .stderr(Stdio::null())
        .stdout(Stdio::null());
    match db {
        Some(url) => cmd.env("INCASSO_DATABASE_URL", url),
        None => cmd.env_remove("INCASSO_DATABASE_URL"),
    };
    let running = Running(cmd.spawn().unwrap());
    assert!(wait_for_health(port), "incasso did not start");
    running
}

async fn report(http: &reqwest::Client, url: &str) -> ReceiverReport {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

async fn run(backend: Backend) {
    eprintln!("webhooks across kill -9 on {backend:?}");
    incasso_pagopa::connector::install_crypto_provider();
    let dir = temp_dir(&format!("webhooks-kill-{backend:?}"));
    let db = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(incasso_testkit::fresh_database_url(backend).await),
    };
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start(&dir, port, &db);
    let demo: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("demo.json")).unwrap()).unwrap();
    assert!(
        demo["webhook_deliveries_url"]
            .as_str()
            .unwrap()
            .ends_with("/simulator/webhooks")
    );
    let fc = demo["enti"][0]["fiscal_code"].as_str().unwrap().to_string();
    let key = demo["intermediary_api_key"].as_str().unwrap().to_string();

    // The Node and the receiver, in this process: they outlive incasso.
    let routes = demo["enti"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| Route {
            fiscal_code: e["fiscal_code"].as_str().unwrap().into(),
            broker_id: demo["broker_id"].as_str().unwrap().into(),
            station_id: e["station_id"].as_str().unwrap().into(),
            segregation_code: e["segregation_code"].as_str().and_then(|s| s.parse().ok()),
        })
        .collect();
    let sim = Simulator::new(Settings {
        ente_soap_url: format!("{base}/pagopa/paForNode"),
        routes,
        ..Default::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(sim.clone().serve(listener, std::future::pending()));
    let receiver = format!("{sim_url}/simulator/webhooks/kill");

    let http = reqwest::Client::new();
    let reg: Value = http
        .post(format!("{base}/api/v1/enti/{fc}/webhooks"))
        .header("Ocp-Apim-Subscription-Key", &key)
        .json(&json!({"url": receiver, "description": "kill -9"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = reg["secret"].as_str().expect("registered").to_string();
    sim.configure_webhook_receiver(
        "kill",
        ReceiverSettings {
            secret: Some(secret.clone()),
            fail_next: 4,
            slow_ms: 1_500,
            ..Default::default()
        },
    );

    // What to pay: installments of positions with at least two (never
    // the single solution, which would settle the plan), and single
    // notices. Notices by position, in the order they are paid.
    let mut by_iupd: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in demo["enti"][0]["payable_notices"].as_array().unwrap() {
        by_iupd
            .entry(n["iupd"].as_str().unwrap().into())
            .or_default()
            .push(n["notice_number"].as_str().unwrap().into());
    }
    let plans: Vec<(String, Vec<String>)> = by_iupd
        .iter()
        .filter(|(_, navs)| navs.len() >= 3)
        .take(3)
        .map(|(iupd, navs)| (iupd.clone(), navs[1..3].to_vec()))
        .collect();
    let singles: Vec<(String, Vec<String>)> = by_iupd
        .iter()
        .filter(|(_, navs)| navs.len() == 1)
        .take(6)
        .map(|(iupd, navs)| (iupd.clone(), navs.clone()))
        .collect();
    assert_eq!(plans.len(), 3, "the demo has installment plans");
    assert_eq!(singles.len(), 6, "the demo has single notices");
    let mut paid: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let pay = async |iupd: &str, nav: &str, paid: &mut BTreeMap<String, Vec<String>>| {
        sim.pay(&fc, nav)
            .await
            .unwrap_or_else(|e| panic!("paying {nav}: {e}"));
        paid.entry(iupd.to_string())
            .or_default()
            .push(nav.to_string());
    };
    // Before the kill: both installments of each plan, and four singles.
    for (iupd, navs) in &plans {
        for nav in navs {
            pay(iupd, nav, &mut paid).await;
        }
    }
    for (iupd, navs) in singles.iter().take(4) {
        pay(iupd, &navs[0], &mut paid).await;
    }

    // Kill -9 while deliveries are failing or on their way.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = report(&http, &receiver).await;
        if r.deliveries.len() >= 6 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = report(&http, &receiver).await;
    server.kill().unwrap();
    server.wait().unwrap();
    eprintln!(
        "killed with {} deliveries received, {} events taken",
        before.deliveries.len(),
        before.events
    );
    assert!(
        before.events < 10,
        "incasso was killed before it had delivered everything ({} events)",
        before.events
    );

    // Started again on the same database; a failure more, no slowness;
    // two more payments.
    sim.configure_webhook_receiver(
        "kill",
        ReceiverSettings {
            secret: Some(secret.clone()),
            fail_next: 1,
            ..Default::default()
        },
    );
    let _server = start(&dir, port, &db);
    for (iupd, navs) in singles.iter().skip(4) {
        pay(iupd, &navs[0], &mut paid).await;
    }
    let expected: usize = paid.values().map(Vec::len).sum();
    assert_eq!(expected, 12);

    // Every payment's event arrives (leases of the killed process lapse
    // in 30 s, then its deliveries go again).
    let deadline = Instant::now() + Duration::from_secs(120);
    let last = loop {
        let r = report(&http, &receiver).await;
        if r.events >= expected || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(last.rejected, 0, "every signature verified");
    assert_eq!(last.events, expected, "{backend:?}: events lost: {last:?}");
    let taken: Vec<_> = last
        .deliveries
        .iter()
        .filter(|d| d.answered < 300)
        .collect();
    let navs: HashSet<&str> = taken
        .iter()
        .map(|d| d.notice_number.as_deref().unwrap())
        .collect();
    for (iupd, list) in &paid {
        for nav in list {
            assert!(navs.contains(nav.as_str()), "{iupd}/{nav} never received");
        }
    }
    // In order per position: the first arrival of each event, position by
    // position, follows the order of payment, and event ids grow.
    for (iupd, list) in &paid {
        let mut seen = HashSet::new();
        let firsts: Vec<(i64, String)> = taken
            .iter()
            .filter(|d| &d.iupd == iupd && d.kind == "PAID")
            .filter(|d| seen.insert(d.event_id))
            .map(|d| (d.event_id, d.notice_number.clone().unwrap()))
            .collect();
        let order: Vec<String> = firsts.iter().map(|(_, n)| n.clone()).collect();
        assert_eq!(&order, list, "{backend:?}: {iupd} out of order");
        assert!(firsts.windows(2).all(|w| w[0].0 < w[1].0));
    }
    // The demo's own receiver (in the restarted incasso's simulator, on a
    // new port: the demo registered it again) got the payments made since.
    let demo: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("demo.json")).unwrap()).unwrap();
    let listed_at = demo["webhook_deliveries_url"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let demo_events = loop {
        let all: Vec<ReceiverReport> = http
            .get(&listed_at)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let events = all
            .iter()
            .find(|r| r.name == "demo")
            .map_or(0, |r| r.events);
        if events >= 2 || Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(demo_events, 2, "{backend:?}: the demo's receiver");
    let repeats = last.deliveries.iter().filter(|d| d.duplicate).count();
    eprintln!(
        "{backend:?}: {} deliveries, {} events, {repeats} repeated",
        last.deliveries.len(),
        last.events
    );
}
