//! Two `incasso serve` processes on one PostgreSQL, with no coordination
//! of their own, as behind a load balancer. Positions are created (IUVs
//! from the Ente's coordinator), paid through the Node's primitives (each
//! receipt sent to both processes, as a Node retrying would), a reporting
//! flow is sent to both at once, and a supply is loaded, while one process
//! is killed with SIGKILL halfway; a client whose process died goes to the
//! other, as a load balancer sends it. Afterwards: every position once,
//! no IUV twice, every receipt once, the flow once, the supply whole.

use crate::common::gpd::{self, ENTE};
use crate::common::process::{Running, free_port, serve_command, start_server, temp_dir};
use incasso_core::Cents;
use incasso_core::fdr::FlowOutcome;
use incasso_pagopa::wire::{self, QrCode};
use incasso_testkit::recon;
use incasso_testkit::{Backend, backends, fresh_database_url};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

const POSITIONS: usize = 120;
const BEFORE_KILL: usize = 40;
const SUPPLY_ROWS: u64 = 2_000;

fn start(url: &str, name: &str, port: u16) -> Running {
    let dir = temp_dir(&format!("two-processes-{name}"));
    start_server(serve_command(url, &dir, port), port)
}

/// The two processes' base URLs, A's first, and whether A still runs.
struct Balancer {
    bases: [String; 2],
    a_alive: AtomicBool,
    http: reqwest::Client,
    key: String,
}

impl Balancer {
    /// The process to try first for request `i`: A and B in turn while A
    /// lives.
    fn first(&self, i: usize) -> usize {
        if self.a_alive.load(Ordering::SeqCst) {
            i % 2
        } else {
            1
        }
    }

    /// Sends `make(base)` to the first process, then to the other when the
    /// first does not answer or answers 5xx: what a load balancer does.
    async fn send(
        &self,
        i: usize,
        make: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> (u16, String) {
        let first = self.first(i);
        for attempt in 0..6 {
            let which = (first + attempt) % 2;
            match make(&self.bases[which]).send().await {
                Ok(r) if r.status().as_u16() < 500 => {
                    let status = r.status().as_u16();
                    return (status, r.text().await.unwrap_or_default());
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        panic!("request {i}: neither process answered");
    }

    async fn soap(&self, i: usize, body: &str) -> wire::node::Response {
        let (status, text) = self
            .send(i, |base| {
                self.http
                    .post(format!("{base}/pagopa/paForNode"))
                    .header("Content-Type", "text/xml; charset=utf-8")
                    .body(body.to_string())
            })
            .await;
        assert_eq!(status, 200, "{text}");
        wire::node::parse_response(text.as_bytes()).unwrap()
    }
}

/// A position of [`ENTE`] with one notice of 100.00 euro whose IUV the
/// Ente's coordinator gives.
fn position(iupd: &str) -> Value {
    let mut p = gpd::position(iupd, &[String::new()]);
    p["paymentOption"][0].as_object_mut().unwrap().remove("iuv");
    p
}

/// Creates `iupd` through the balancer and pays it through the Node's
/// primitives, the receipt sent to both processes; its IUV.
async fn create_and_pay(lb: &Balancer, i: usize) -> String {
    let iupd = format!("TWO-{i:04}");
    let body = position(&iupd);
    let (status, text) = lb
        .send(i, |base| {
            lb.http
                .post(format!(
                    "{base}/gpd/v1/organizations/{ENTE}/debtpositions?toPublish=true"
                ))
                .header("Ocp-Apim-Subscription-Key", &lb.key)
                .json(&body)
        })
        .await;
    // 409: made by a first attempt whose answer was lost with its process.
    let created: Value = match status {
        201 => serde_json::from_str(&text).unwrap(),
        409 => {
            let (status, text) = lb
                .send(i + 1, |base| {
                    lb.http
                        .get(format!(
                            "{base}/gpd/v1/organizations/{ENTE}/debtpositions/{iupd}"
                        ))
                        .header("Ocp-Apim-Subscription-Key", &lb.key)
                })
                .await;
            assert_eq!(status, 200, "{text}");
            serde_json::from_str(&text).unwrap()
        }
        _ => panic!("{iupd}: {status} {text}"),
    };
    let nav = created["paymentOption"][0]["nav"]
        .as_str()
        .unwrap()
        .to_string();
    let iuv = created["paymentOption"][0]["iuv"]
        .as_str()
        .unwrap()
        .to_string();
    let qr = QrCode {
        fiscal_code: ENTE.into(),
        notice_number: nav.clone(),
    };
    let got = lb
        .soap(
            i,
            &wire::node::get_payment_request(&gpd::node_header(), &qr, Cents(10_000), true),
        )
        .await;
    assert!(got.is_ok(), "{iupd}: {:?}", got.fault);
    let rt = wire::node::send_rt_request(
        &gpd::node_header(),
        &gpd::receipt(&format!("RT-{iupd}"), &nav, "OK"),
        true,
    );
    // Twice, once per process: the second is the same receipt again,
    // answered PAA_RECEIPT_DUPLICATA as paForNode says (or OK, when the
    // first's answer was lost with its process and this is its retry).
    for j in 0..2 {
        let sent = lb.soap(i + j, &rt).await;
        assert!(
            sent.is_ok() || sent.fault_code() == Some("PAA_RECEIPT_DUPLICATA"),
            "{iupd}: {:?}",
            sent.fault
        );
    }
    iuv
}

fn flow(iuvs: &[String]) -> String {
    let day = chrono::Utc::now().date_naive();
    let payments = iuvs
        .iter()
        .map(|iuv| recon::line(iuv, &format!("R-{iuv}"), 8_000, FlowOutcome::Paid, day))
        .collect();
    let id = format!("{}{}-0001", day.format("%Y-%m-%d"), recon::PSP);
    incasso_recon::fdr::write(&recon::flow(ENTE, &id, "TRN-TWO-PROCESSES", payments))
}

#[test]
fn two_processes_share_one_postgresql_and_survive_a_kill_9() {
    if !backends().contains(&Backend::Postgres) {
        eprintln!("two processes: PostgreSQL only");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    incasso_pagopa::connector::install_crypto_provider();
    let url = fresh_database_url(Backend::Postgres).await;
    let (store, key) = crate::common::faults::seed(&url).await;
    let (port_a, port_b) = (free_port(), free_port());
    let mut a = start(&url, "a", port_a);
    let _b = start(&url, "b", port_b);
    let lb = Arc::new(Balancer {
        bases: [
            format!("http://127.0.0.1:{port_a}"),
            format!("http://127.0.0.1:{port_b}"),
        ],
        a_alive: AtomicBool::new(true),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        key,
    });

    // The first ten, then their flow sent to both processes at once.
    let mut iuvs = Vec::new();
    for i in 0..10 {
        iuvs.push(create_and_pay(&lb, i).await);
    }
    let fdr = flow(&iuvs);
    let post_flow = |which: usize| {
        let lb = lb.clone();
        let fdr = fdr.clone();
        async move {
            let r = lb
                .http
                .post(format!("{}/api/v1/enti/{ENTE}/flows", lb.bases[which]))
                .header("Ocp-Apim-Subscription-Key", &lb.key)
                .header("Content-Type", "application/xml")
                .body(fdr)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (to_a, to_b) = tokio::join!(post_flow(0), post_flow(1));
    let mut statuses = [to_a.0, to_b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [200, 201],
        "the flow taken once: {to_a:?} {to_b:?}"
    );

    // The rest by six clients at once; A killed after BEFORE_KILL.
    let done = Arc::new(AtomicUsize::new(10));
    let next = Arc::new(AtomicUsize::new(10));
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let (lb, done, next) = (lb.clone(), done.clone(), next.clone());
        clients.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= POSITIONS {
                    return mine;
                }
                mine.push(create_and_pay(&lb, i).await);
                done.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    // The supply, to B, while the clients run.
    let csv_path = temp_dir("two-processes-supply").join("supply.csv");
    crate::cli::write_csv(&csv_path, SUPPLY_ROWS);
    let supply = lb
        .http
        .post(format!(
            "{}/api/v1/enti/{ENTE}/supplies?layout=incasso-csv&fileName=supply.csv",
            lb.bases[1]
        ))
        .header("Ocp-Apim-Subscription-Key", &lb.key)
        .header("Content-Type", "application/octet-stream")
        .body(std::fs::read(&csv_path).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(supply.status().as_u16(), 202);
    let supply: Value = supply.json().await.unwrap();
    let supply_id = supply["supplyId"].as_i64().unwrap();
    while done.load(Ordering::SeqCst) < BEFORE_KILL {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &a.id().to_string()])
        .status();
    let _ = a.wait();
    lb.a_alive.store(false, Ordering::SeqCst);
    while let Some(mine) = clients.join_next().await {
        iuvs.extend(mine.unwrap());
    }

    // Every position once, no IUV twice, every receipt once.
    assert_eq!(iuvs.len(), POSITIONS);
    let distinct: HashSet<&String> = iuvs.iter().collect();
    assert_eq!(distinct.len(), POSITIONS, "an IUV given twice");
    let receipts = store.list_receipts(ENTE, false, None, 1000).await.unwrap();
    assert_eq!(receipts.len(), POSITIONS, "receipts lost or doubled");
    let receipt_ids: HashSet<&String> = receipts.iter().map(|r| &r.receipt_id).collect();
    assert_eq!(receipt_ids.len(), POSITIONS);
    for i in 0..POSITIONS {
        let p = store
            .get_position(ENTE, &format!("TWO-{i:04}"))
            .await
            .unwrap();
        assert_eq!(
            p.position.status,
            incasso_core::position::PositionStatus::Paid,
            "TWO-{i:04}"
        );
    }
    // The supply, whole, once: loaded by B.
    let mut state = Value::Null;
    for _ in 0..600 {
        let r = lb
            .http
            .get(format!(
                "{}/api/v1/enti/{ENTE}/supplies/{supply_id}",
                lb.bases[1]
            ))
            .header("Ocp-Apim-Subscription-Key", &lb.key)
            .send()
            .await
            .unwrap();
        state = r.json().await.unwrap();
        if state["status"] != "LOADING" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state["status"], "LOADED", "{state}");
    let total = store
        .list_positions(
            ENTE,
            &incasso_store::ListFilter {
                limit: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .items_found;
    assert_eq!(total, POSITIONS as u64 + SUPPLY_ROWS);
    // The flow once.
    let flows = lb
        .http
        .get(format!("{}/api/v1/enti/{ENTE}/flows", lb.bases[1]))
        .header("Ocp-Apim-Subscription-Key", &lb.key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(flows.matches("PSPEITMMXXX-0001").count(), 1, "{flows}");
}
