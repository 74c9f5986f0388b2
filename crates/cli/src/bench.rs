//! `incasso bench ...`: measurements that ship with the product, so that a
//! speed claim can be checked on any machine. Each prints a readable table
//! and, as its last line, one JSON object of figures (DESIGN.md section 3).

use anyhow::{Context, Result};
use chrono::{Duration, Utc};
use clap::Subcommand;
use incasso_core::Cents;
use incasso_core::accertamento::{Accertamento, AccertamentoRef};
use incasso_core::ente::{Ente, StationLink};
use incasso_core::position::DebtPosition;
use incasso_core::sample::{self, PositionSpec};
use incasso_store::Store;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

#[derive(Subcommand)]
pub enum Which {
    /// Load a generated CSV supply and a fixed-width one into SQLite, with
    /// IUV assignment, against raw SQLite inserts of the same rows.
    Load {
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        #[arg(long)]
        quick: bool,
        /// Load into this database (both supplies, one after the other)
        /// instead of a fresh SQLite file per supply.
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Full payment cycles (verify, getPaymentV2, sendRTV2) over loopback,
    /// compared with a bare axum handler on the same machine.
    Node {
        /// Payment cycles (each pays one fresh position).
        #[arg(long, default_value_t = 20_000)]
        cycles: u64,
        /// Concurrent PSP clients. Latency grows with it (Little's law);
        /// 8 keeps both cores busy.
        #[arg(long, default_value_t = 8)]
        concurrency: u64,
        #[arg(long)]
        quick: bool,
        /// Run against this database instead of a fresh SQLite file.
        #[arg(long)]
        database_url: Option<String>,
        /// Serve from this many `incasso serve` processes on the same
        /// database, the clients spread over them as by a load balancer.
        /// 0: the server runs inside the bench's own process.
        #[arg(long, default_value_t = 0)]
        processes: u16,
    },
    /// Render payment notices on one core: one at a time, and a supply's
    /// notices as a streamed ZIP; against an A4 page with one line of text.
    Notices {
        /// Notices in the bulk ZIP.
        #[arg(long, default_value_t = 10_000)]
        count: u64,
        #[arg(long)]
        quick: bool,
    },
    /// A big Comune's year of reconciliation (SQLite, or the database given): reporting flows
    /// taken in (XML parsed and stored), the treasury's sospesi, and the
    /// matching run.
    Recon {
        /// Reporting flows (one sospeso each).
        #[arg(long, default_value_t = 30_000)]
        flows: u64,
        /// Payments per flow.
        #[arg(long, default_value_t = 100)]
        lines: u64,
        #[arg(long)]
        quick: bool,
        /// Run against this (empty) database instead of a fresh SQLite file.
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Signed-in clerks browsing the back office's lists, searches and a
    /// position's page over a store of many positions: the latency of each
    /// page for one clerk, and pages per second for several.
    Backoffice {
        /// Positions in the store (seeded once; an existing database that
        /// already holds them is reused).
        #[arg(long, default_value_t = 1_000_000)]
        positions: u64,
        /// Clerks browsing at once in the throughput phase.
        #[arg(long, default_value_t = 4)]
        clients: u64,
        /// Times each page is opened by the lone clerk (and per clerk in the
        /// throughput phase).
        #[arg(long, default_value_t = 40)]
        rounds: u64,
        #[arg(long)]
        quick: bool,
        /// Run against this database instead of a fresh SQLite file.
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Citizens on the portal at once: each looks a notice up, opens its
    /// PDF and sends it in a cart to the simulator's Checkout (run in this
    /// process); page views per second and their latency.
    Portal {
        /// Citizens browsing at once.
        #[arg(long, default_value_t = 200)]
        concurrency: u64,
        /// Visits in each phase, each by a new citizen with a notice of
        /// their own.
        #[arg(long, default_value_t = 5_000)]
        visits: u64,
        /// Page views a second offered in the first phase (the second
        /// goes as fast as pages are served).
        #[arg(long, default_value_t = 1_000)]
        rate: u64,
        #[arg(long)]
        quick: bool,
        /// Run against this database instead of a fresh SQLite file.
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Other applications' portals paying through DigitPOS at once: each
    /// creates a spontaneous payment, its payer pays on the simulator's
    /// Checkout, and the receipt comes back through the Node; complete
    /// payments per second and the create call's latency.
    Digitpos {
        /// External portals' clients paying at once (16 fill the
        /// database's writer; more only queue for it, adding latency).
        #[arg(long, default_value_t = 16)]
        concurrency: u64,
        /// Payments in all.
        #[arg(long, default_value_t = 5_000)]
        payments: u64,
        #[arg(long)]
        quick: bool,
        /// Run against this database instead of a fresh SQLite file.
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Positions published with automatic App IO invitations, drained
    /// through the notification outbox to the simulated IO (and by e-mail
    /// to its SMTP server for citizens who opted out): events a second
    /// with IO not the limit, then with IO at a rate limit.
    Notify {
        /// Positions of the phase where IO is not the limit.
        #[arg(long, default_value_t = 100_000)]
        positions: u64,
        /// Positions of the phase at IO's rate limit.
        #[arg(long, default_value_t = 5_000)]
        limited: u64,
        /// IO calls a second allowed in the rate-limited phase (a profile
        /// check and a message per invitation).
        #[arg(long, default_value_t = 400)]
        rate: u32,
        #[arg(long)]
        quick: bool,
        /// Run against this database instead of a fresh SQLite file.
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Create positions through the store and through the HTTP API, and
    /// compare with raw SQLite inserts of the same rows.
    Positions {
        /// Positions created through the store.
        #[arg(long, default_value_t = 100_000)]
        n: u64,
        /// Positions created through the HTTP API.
        #[arg(long, default_value_t = 20_000)]
        http_n: u64,
        /// Concurrent clients for the HTTP phase.
        #[arg(long, default_value_t = 16)]
        concurrency: u64,
        /// A small run, for smoke tests.
        #[arg(long)]
        quick: bool,
        /// Run against this database instead of a fresh SQLite file.
        #[arg(long)]
        database_url: Option<String>,
    },
}

pub async fn run(which: Which) -> Result<()> {
    match which {
        Which::Load {
            rows,
            quick,
            database_url,
        } => load(if quick { 5_000 } else { rows }, database_url).await,
        Which::Notices { count, quick } => notices(if quick { 200 } else { count }).await,
        Which::Node {
            cycles,
            concurrency,
            quick,
            database_url,
            processes,
        } => {
            let cycles = if quick { 300 } else { cycles };
            node(cycles, concurrency.max(1), database_url, processes).await
        }
        Which::Recon {
            flows,
            lines,
            quick,
            database_url,
        } => {
            let (flows, lines) = if quick { (300, 10) } else { (flows, lines) };
            crate::bench_recon::run(flows, lines, database_url).await
        }
        Which::Backoffice {
            positions,
            clients,
            rounds,
            quick,
            database_url,
        } => {
            let (positions, rounds) = if quick {
                (5_000, 5)
            } else {
                (positions, rounds)
            };
            crate::bench_backoffice::run(positions, clients, rounds, database_url).await
        }
        Which::Portal {
            concurrency,
            visits,
            rate,
            quick,
            database_url,
        } => {
            let (concurrency, visits, rate) = if quick {
                (concurrency.min(20), 60, rate.min(200))
            } else {
                (concurrency, visits, rate)
            };
            crate::bench_portal::run(crate::bench_portal::Args {
                concurrency,
                visits,
                rate,
                database_url,
            })
            .await
        }
        Which::Digitpos {
            concurrency,
            payments,
            quick,
            database_url,
        } => {
            let (concurrency, payments) = if quick {
                (concurrency.min(8), 60)
            } else {
                (concurrency, payments)
            };
            crate::bench_digitpos::run(crate::bench_digitpos::Args {
                concurrency,
                payments,
                database_url,
            })
            .await
        }
        Which::Notify {
            positions,
            limited,
            rate,
            quick,
            database_url,
        } => {
            let (positions, limited, rate) = if quick {
                (2_000, 200, rate.min(200))
            } else {
                (positions, limited, rate)
            };
            crate::bench_notify::run(crate::bench_notify::Args {
                positions,
                limited,
                rate,
                database_url,
            })
            .await
        }
        Which::Positions {
            n,
            http_n,
            concurrency,
            quick,
            database_url,
        } => {
            let (n, http_n) = if quick { (2_000, 500) } else { (n, http_n) };
            positions(n, http_n, concurrency.max(1), database_url).await
        }
    }
}

pub(crate) const ENTE: &str = "80000130585";
pub(crate) const IBAN: &str = "IT65B0200805364000104567891";
const CATEGORY: &str = "9/0101101IM/";

/// Peak resident memory of this process so far, in MiB (Linux).
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

pub(crate) fn spec(i: u64, prefix: &str) -> DebtPosition {
    sample::position(&PositionSpec {
        ente: ENTE,
        company_name: "Comune di Borgo Esempio",
        iupd: format!("{prefix}-{i:08}"),
        debtor_index: i,
        amount: Cents(1_000 + (i % 50_000) as i64),
        description: format!("TARI 2026 - avviso {i}"),
        category: CATEGORY,
        iban: IBAN,
        due_date: Utc::now() + Duration::days(60),
        installments: 0,
        second_beneficiary: None,
        quotas: vec![(
            AccertamentoRef {
                year: 2026,
                code: "ACC-TARI".into(),
            },
            100,
        )],
    })
}

pub(crate) async fn prepare(store: &Store) -> Result<()> {
    let now = Utc::now();
    if store.get_ente(ENTE).await.is_ok() {
        return Ok(());
    }
    store
        .create_ente(
            &Ente {
                fiscal_code: ENTE.into(),
                name: "Comune di Borgo Esempio".into(),
                ipa_code: None,
                iban: Some(IBAN.into()),
                postal_iban: None,
                cbill_code: None,
                email: None,
            },
            now,
        )
        .await?;
    store
        .add_station(
            ENTE,
            &StationLink {
                broker_id: "15376371009".into(),
                station_id: "15376371009_01".into(),
                segregation_code: 1,
            },
            now,
        )
        .await?;
    store
        .put_accertamento(
            ENTE,
            &Accertamento {
                year: 2026,
                code: "ACC-TARI".into(),
                description: "TARI".into(),
                chapter: "1010".into(),
                article: None,
                siope_code: None,
                active: true,
            },
        )
        .await?;
    Ok(())
}

async fn positions(
    n: u64,
    http_n: u64,
    concurrency: u64,
    database_url: Option<String>,
) -> Result<()> {
    let dir = tempdir()?;
    let url =
        database_url.unwrap_or_else(|| format!("sqlite://{}", dir.join("bench.db").display()));
    let store = Store::connect(&url)
        .await
        .context("opening the bench database")?;
    let backend = store.dialect().name();
    prepare(&store).await?;
    let run_id = format!("B{}", Utc::now().timestamp_millis());

    // Phase 1: through the store, a few writers as an application server has.
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        let next = next.clone();
        let prefix = format!("{run_id}-S");
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, incasso_store::StoreError>(());
                }
                store
                    .create_position(ENTE, spec(i, &prefix), Utc::now(), true)
                    .await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let store_secs = started.elapsed().as_secs_f64();
    let store_rate = n as f64 / store_secs;

    // Phase 2: through the HTTP API on loopback.
    let (key_id, key) = incasso_app::keys::generate_key();
    store
        .insert_api_key(
            &key_id,
            &incasso_app::keys::hash_key(&key),
            Some(ENTE),
            incasso_store::KeyScope::Ente,
            "bench",
            Utc::now(),
        )
        .await?;
    let server = InProcessServer::start(&store).await?;
    let client = reqwest::Client::new();
    let url = format!(
        "{}/gpd/v1/organizations/{ENTE}/debtpositions?toPublish=true",
        server.base
    );
    let bodies: Vec<serde_json::Value> = (0..http_n)
        .map(|i| gpd_body(&spec(i, &format!("{run_id}-H"))))
        .collect();
    let bodies = Arc::new(bodies);
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, key, bodies, next) = (
            client.clone(),
            url.clone(),
            key.clone(),
            bodies.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= bodies.len() as u64 {
                    return Ok::<_, anyhow::Error>(());
                }
                let r = client
                    .post(&url)
                    .header("Ocp-Apim-Subscription-Key", &key)
                    .json(&bodies[i as usize])
                    .send()
                    .await?;
                anyhow::ensure!(r.status() == 201, "HTTP create answered {}", r.status());
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let http_secs = started.elapsed().as_secs_f64();
    let http_rate = http_n as f64 / http_secs;

    // Phase 3: the same number through GPD v2, 100 positions per call.
    let v2_url = format!(
        "{}/gpd/v2/organizations/{ENTE}/debtpositions?toPublish=true",
        server.base
    );
    let calls: Vec<serde_json::Value> = (0..http_n)
        .map(|i| gpd_body(&spec(i, &format!("{run_id}-V"))))
        .collect::<Vec<_>>()
        .chunks(100)
        .map(|chunk| json!({"paymentPositions": chunk}))
        .collect();
    let calls = Arc::new(calls);
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency.min(4) {
        let (client, url, key, calls, next) = (
            client.clone(),
            v2_url.clone(),
            key.clone(),
            calls.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= calls.len() as u64 {
                    return Ok::<_, anyhow::Error>(());
                }
                let r = client
                    .post(&url)
                    .header("Ocp-Apim-Subscription-Key", &key)
                    .json(&calls[i as usize])
                    .send()
                    .await?;
                anyhow::ensure!(r.status() == 201, "v2 create answered {}", r.status());
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let v2_secs = started.elapsed().as_secs_f64();
    let v2_rate = http_n as f64 / v2_secs;

    // Phase 4: the same number in one massive upload, from the POST of the
    // ZIP to its status COMPLETED.
    let positions: Vec<serde_json::Value> = (0..http_n)
        .map(|i| gpd_body(&spec(i, &format!("{run_id}-U"))))
        .collect();
    let zip = zip_of(
        "positions.json",
        &serde_json::to_vec(&json!({"paymentPositions": positions}))?,
    )?;
    let upload_secs = massive_upload(&client, &server.base, &key, zip).await?;
    let upload_rate = http_n as f64 / upload_secs;
    server.stop().await?;
    store.close().await;

    // Baseline: raw SQLite, the same rows, one prepared statement per table,
    // one transaction: what the disk and SQLite can do at best.
    let baseline_rate = raw_sqlite(&dir, n).await?;
    let ratio = store_rate / baseline_rate;
    let rss = peak_rss_mb();
    println!("bench positions ({backend})");
    println!(
        "  {:<38} {:>10} {:>10} {:>12}",
        "phase", "items", "seconds", "per second"
    );
    println!(
        "  {:<38} {:>10} {:>10.2} {:>12.0}",
        "store (4 writers, 1 tx per position)", n, store_secs, store_rate
    );
    println!(
        "  {:<38} {:>10} {:>10.2} {:>12.0}",
        format!("HTTP /gpd/v1 ({concurrency} clients)"),
        http_n,
        http_secs,
        http_rate
    );
    println!(
        "  {:<38} {:>10} {:>10.2} {:>12.0}",
        format!(
            "HTTP /gpd/v2 (100 per call, {} clients)",
            concurrency.min(4)
        ),
        http_n,
        v2_secs,
        v2_rate
    );
    println!(
        "  {:<38} {:>10} {:>10.2} {:>12.0}",
        "massive upload /gpd/upload/v2 (1 ZIP)", http_n, upload_secs, upload_rate
    );
    println!(
        "  {:<38} {:>10} {:>10} {:>12.0}",
        "raw SQLite (1 tx, prepared)", n, "", baseline_rate
    );
    println!("  ratio store/raw {ratio:.3}; peak RSS {rss:.0} MiB");
    println!(
        "{}",
        json!({
            "bench": "positions",
            "backend": backend,
            "items": n,
            "seconds": round2(store_secs),
            "per_s": store_rate.round(),
            "http_items": http_n,
            "http_seconds": round2(http_secs),
            "http_per_s": http_rate.round(),
            "v2_seconds": round2(v2_secs),
            "v2_per_s": v2_rate.round(),
            "upload_seconds": round2(upload_secs),
            "upload_per_s": upload_rate.round(),
            "peak_rss_mb": rss.round(),
            "baseline_per_s": baseline_rate.round(),
            "ratio": (ratio * 1000.0).round() / 1000.0,
        })
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A ZIP of one file.
fn zip_of(name: &str, content: &[u8]) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    out.start_file(name, zip::write::SimpleFileOptions::default())?;
    out.write_all(content)?;
    Ok(out.finish()?.into_inner())
}

/// Posts `zip` to GPD's massive upload and waits for it to be done;
/// answers the seconds from the post to the end.
async fn massive_upload(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    zip: Vec<u8>,
) -> Result<f64> {
    const BOUNDARY: &str = "incasso-bench-boundary";
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"positions.zip\"\r\nContent-Type: application/zip\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&zip);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let org =
        format!("{base}/gpd/upload/v2/brokers/15376371009/organizations/{ENTE}/debtpositions");
    let started = Instant::now();
    let r = client
        .post(format!("{org}/file"))
        .header("Ocp-Apim-Subscription-Key", key)
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .send()
        .await?;
    anyhow::ensure!(
        r.status() == 202,
        "upload answered {}: {}",
        r.status(),
        r.text().await?
    );
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .context("upload answered no Location")?
        .to_string();
    let status_url = format!("{base}/gpd/upload/v2/{location}");
    loop {
        let status: serde_json::Value = client
            .get(&status_url)
            .header("Ocp-Apim-Subscription-Key", key)
            .send()
            .await?
            .json()
            .await?;
        match status["operationStatus"].as_str() {
            Some("IN_PROGRESS") => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            Some("COMPLETED") => return Ok(started.elapsed().as_secs_f64()),
            _ => anyhow::bail!("upload ended as {status}"),
        }
    }
}

pub(crate) fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

pub(crate) fn tempdir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "incasso-bench-{}-{}",
        std::process::id(),
        Utc::now().timestamp_micros()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The GPD JSON a management application would send for this position.
fn gpd_body(p: &DebtPosition) -> serde_json::Value {
    let o = &p.options[0];
    let t = &o.transfers[0];
    json!({
        "iupd": p.iupd, "type": "F", "fiscalCode": p.debtor.fiscal_code, "fullName": p.debtor.full_name,
        "switchToExpired": false, "companyName": p.company_name,
        "paymentOption": [{
            "amount": o.amount.0, "description": o.description, "isPartialPayment": false,
            "dueDate": o.due_date.to_rfc3339(), "paymentOptionMetadata": [],
            "transfer": [{
                "idTransfer": "1", "amount": t.amount.0, "remittanceInformation": t.remittance_information,
                "category": t.category, "iban": t.iban, "transferMetadata": [],
                "accountingQuotas": [{"accertamento": "2026/ACC-TARI", "amount": t.amount.0}]
            }]
        }]
    })
}

/// The physical limit: the same rows into the same tables and indexes, by
/// rusqlite prepared statements in one transaction on one thread
/// ([`incasso_store::bench::raw_positions`]).
async fn raw_sqlite(dir: &std::path::Path, n: u64) -> Result<f64> {
    let path = dir.join("raw.db");
    // The same schema, made by the same migrations.
    let store = Store::connect(&format!("sqlite://{}", path.display())).await?;
    prepare(&store).await?;
    store.close().await;
    let secs = tokio::task::spawn_blocking(move || -> Result<f64> {
        let started = Instant::now();
        incasso_store::bench::raw_positions(&path, ENTE, n, |i| spec(i, "RAW"), Utc::now())?;
        Ok(started.elapsed().as_secs_f64())
    })
    .await??;
    Ok(n as f64 / secs)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn node(
    cycles: u64,
    concurrency: u64,
    database_url: Option<String>,
    processes: u16,
) -> Result<()> {
    use incasso_simulator::{Faults, NodeClient, Route};
    let dir = tempdir()?;
    let db_url =
        database_url.unwrap_or_else(|| format!("sqlite://{}", dir.join("node.db").display()));
    let store = Store::connect(&db_url)
        .await
        .context("opening the bench database")?;
    prepare(&store).await?;
    let run_id = format!("N{}", Utc::now().timestamp_millis());
    // The positions to pay, created beforehand (not measured).
    let mut navs = Vec::with_capacity(cycles as usize);
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (store, next, prefix) = (store.clone(), next.clone(), run_id.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= cycles {
                    return Ok::<_, incasso_store::StoreError>(out);
                }
                let p = store
                    .create_position(ENTE, spec(i, &prefix), Utc::now(), true)
                    .await?;
                out.push(
                    p.position.options[0]
                        .notice_number
                        .clone()
                        .map(|n| n.as_str().to_string())
                        .unwrap_or_default(),
                );
            }
        }));
    }
    for t in tasks {
        navs.extend(t.await??);
    }
    // The server: inside this process, or `processes` children of it
    // behind the clients' own round robin.
    let (servers, in_process, bases) = if processes == 0 {
        let server = InProcessServer::start(&store).await?;
        let bases = vec![server.base.clone()];
        (ServerProcesses::default(), Some(server), bases)
    } else {
        let servers = ServerProcesses::start(&db_url, &dir, processes).await?;
        let bases = servers
            .ports
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}"))
            .collect();
        (servers, None, bases)
    };
    let clients: Arc<Vec<NodeClient>> = Arc::new(
        bases
            .iter()
            .map(|base| {
                NodeClient::new(
                    format!("{base}/pagopa/paForNode"),
                    vec![Route {
                        fiscal_code: ENTE.into(),
                        broker_id: "15376371009".into(),
                        station_id: "15376371009_01".into(),
                        segregation_code: Some(1),
                    }],
                )
            })
            .collect(),
    );
    let navs = Arc::new(navs);
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (clients, navs, next) = (clients.clone(), navs.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let faults = Faults::default();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) as usize;
                if i >= navs.len() {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let t = Instant::now();
                clients[i % clients.len()]
                    .pay(ENTE, &navs[i], &faults)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    let secs = started.elapsed().as_secs_f64();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let rate = cycles as f64 / secs;
    let (p50, p99) = (percentile(&latencies, 50.0), percentile(&latencies, 99.0));
    if let Some(server) = in_process {
        server.stop().await?;
    }
    let children_rss = servers.stop();
    // Every cycle must have paid its position.
    let paid = store
        .list_positions(
            ENTE,
            &incasso_store::ListFilter {
                statuses: vec![incasso_core::position::PositionStatus::Paid],
                limit: 1,
                ..Default::default()
            },
        )
        .await?
        .items_found;
    anyhow::ensure!(
        paid >= cycles,
        "only {paid} of {cycles} positions ended up paid"
    );
    store.close().await;
    let baseline = bare_axum(concurrency, (cycles * 3).max(3_000)).await?;
    let ratio = rate / baseline;
    // With server processes, theirs (summed) is what a deployment pays.
    let rss = if processes == 0 {
        peak_rss_mb()
    } else {
        children_rss
    };
    let database = if db_url.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    if processes == 0 {
        println!("bench node ({database})");
    } else {
        println!("bench node ({database}, {processes} incasso serve processes)");
    }
    println!(
        "  {:<44} {:>10} {:>10} {:>12}",
        "phase", "items", "seconds", "per second"
    );
    println!(
        "  {:<44} {:>10} {:>10.2} {:>12.0}",
        format!("payment cycles ({concurrency} PSP clients)"),
        cycles,
        secs,
        rate
    );
    println!(
        "  {:<44} {:>10} {:>10} {:>12.0}",
        "bare axum handler, same clients", "", "", baseline
    );
    println!(
        "  cycle latency p50 {p50:.2} ms, p99 {p99:.2} ms; ratio {ratio:.3}; peak RSS {rss:.0} MiB"
    );
    println!(
        "{}",
        json!({
            "bench": "node",
            "processes": processes,
            "items": cycles,
            "seconds": round2(secs),
            "per_s": rate.round(),
            "p50_ms": round2(p50),
            "p99_ms": round2(p99),
            "peak_rss_mb": rss.round(),
            "baseline_per_s": baseline.round(),
            "ratio": (ratio * 1000.0).round() / 1000.0,
        })
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// incasso's server inside the bench's own process, on a free loopback
/// port, until [`InProcessServer::stop`].
pub(crate) struct InProcessServer {
    pub base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl InProcessServer {
    pub(crate) async fn start(store: &Store) -> Result<InProcessServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(incasso_server::serve_with_listener(
            listener,
            store.clone(),
            async {
                let _ = stopped.await;
            },
        ));
        Ok(InProcessServer { base, stop, task })
    }

    pub(crate) async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        self.task.await??;
        Ok(())
    }
}

/// `incasso serve` processes of this very binary on one database, for
/// `bench node --processes`. Killed when dropped.
#[derive(Default)]
struct ServerProcesses {
    children: Vec<std::process::Child>,
    ports: Vec<u16>,
}

impl ServerProcesses {
    async fn start(database_url: &str, dir: &std::path::Path, n: u16) -> Result<ServerProcesses> {
        let exe = std::env::current_exe().context("finding the incasso binary")?;
        let mut servers = ServerProcesses::default();
        for i in 0..n {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let data_dir = dir.join(format!("serve-{i}"));
            std::fs::create_dir_all(&data_dir)?;
            let child = std::process::Command::new(&exe)
                .args(["serve", "--database-url", database_url, "--bind"])
                .arg(format!("127.0.0.1:{port}"))
                .arg("--data-dir")
                .arg(&data_dir)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .context("starting incasso serve")?;
            servers.children.push(child);
            servers.ports.push(port);
        }
        let http = reqwest::Client::new();
        for port in &servers.ports {
            let started = Instant::now();
            loop {
                let health = http
                    .get(format!("http://127.0.0.1:{port}/health"))
                    .send()
                    .await;
                if health.is_ok_and(|r| r.status().is_success()) {
                    break;
                }
                anyhow::ensure!(
                    started.elapsed() < std::time::Duration::from_secs(30),
                    "incasso serve on port {port} did not start"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        Ok(servers)
    }

    /// Stops them; answers their peak resident memory summed, in MiB.
    fn stop(mut self) -> f64 {
        let mut total_kib = 0.0;
        for child in &mut self.children {
            let status =
                std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
            total_kib += status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .unwrap_or(0.0);
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
        total_kib / 1024.0
    }
}

impl Drop for ServerProcesses {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Requests per second of an axum handler that does nothing, with the same
/// HTTP client and concurrency: the ceiling of HTTP on this machine.
async fn bare_axum(concurrency: u64, requests: u64) -> Result<f64> {
    let app = axum::Router::new().route("/", axum::routing::post(|| async { "OK" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await
    });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, next) = (client.clone(), url.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < requests {
                client.post(&url).body("<x/>").send().await?.bytes().await?;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let rate = requests as f64 / started.elapsed().as_secs_f64();
    let _ = stop_tx.send(());
    server.await??;
    Ok(rate)
}

/// The TARI service the generated supplies name.
async fn put_tari(store: &Store) -> Result<()> {
    store
        .put_service(
            ENTE,
            &incasso_core::catalogue::Service {
                code: "TARI".into(),
                name: "TARI".into(),
                office_code: None,
                taxonomy_code: CATEGORY.into(),
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
        .await?;
    Ok(())
}

/// Counts what is written, and drops it.
struct CountingSink(u64);

impl std::io::Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn notices(count: u64) -> Result<()> {
    use incasso_notice::{render, sample};
    let (_, one) = sample::variants()
        .into_iter()
        .find(|(k, _)| *k == "single-poste")
        .expect("sample variant");
    // One at a time, on this thread: one core.
    let singles = count.clamp(50, 2_000);
    let started = Instant::now();
    let mut bytes = 0;
    for _ in 0..singles {
        bytes += render(&one).map_err(|e| anyhow::anyhow!("{e}"))?.len();
    }
    let single_secs = started.elapsed().as_secs_f64();
    let single_rate = singles as f64 / single_secs;
    // As the portal and the API serve one: packed quick.
    let started = Instant::now();
    let mut quick_bytes = 0;
    for _ in 0..singles {
        quick_bytes += incasso_notice::render_packed(&one, incasso_notice::Packing::Quick)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .len();
    }
    let quick_secs = started.elapsed().as_secs_f64();
    let quick_rate = singles as f64 / quick_secs;
    // The floor: an A4 page with one line of text in the same font.
    let baseline = {
        let font = krilla::text::Font::new(incasso_notice::fonts::REGULAR.into(), 0)
            .ok_or_else(|| anyhow::anyhow!("font"))?;
        let started = Instant::now();
        for _ in 0..singles {
            let mut doc = krilla::Document::new();
            let mut page = doc
                .start_page_with(krilla::page::PageSettings::from_wh(595.28, 841.89).expect("A4"));
            let mut surface = page.surface();
            surface.draw_text(
                krilla::geom::Point::from_xy(40.0, 40.0),
                font.clone(),
                12.0,
                "AVVISO DI PAGAMENTO",
                false,
                krilla::text::TextDirection::Auto,
            );
            surface.finish();
            page.finish();
            doc.finish().map_err(|e| anyhow::anyhow!("{e:?}"))?;
        }
        singles as f64 / started.elapsed().as_secs_f64()
    };
    // A supply of `count` positions, then its notices as a streamed ZIP.
    let dir = tempdir()?;
    let (csv_path, _) = generate_supplies(&dir, count)?;
    let db_url = format!("sqlite://{}", dir.join("notices.db").display());
    let store = Store::connect(&db_url).await?;
    prepare(&store).await?;
    put_tari(&store).await?;
    let layout = incasso_bus::builtin::get("incasso-csv")
        .expect("built-in")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let path = csv_path.clone();
    let open = move || -> std::io::Result<Box<dyn std::io::Read + Send>> {
        Ok(Box::new(std::fs::File::open(&path)?))
    };
    let file = incasso_app::supply::SupplyFile {
        ente: ENTE,
        layout: &layout,
        default_service: None,
        file_name: "notices.csv",
        open: &open,
    };
    let report = incasso_app::supply::load(&store, &file, incasso_app::supply::Sinks::none())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let supply_id = report.supply_id.unwrap_or(0);
    let rss_before = peak_rss_mb();
    let handle = tokio::runtime::Handle::current();
    let ctx = incasso_app::App::new(store.clone(), incasso_app::Settings::new("")).system("bench");
    let job = incasso_app::notices::zip_job(
        &ctx,
        ENTE,
        incasso_app::notices::Selection::Supply(supply_id),
        incasso_notice::Language::Italian,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}", e.detail))?;
    let started = Instant::now();
    let (written, zip_bytes) = tokio::task::spawn_blocking(move || {
        let mut sink = CountingSink(0);
        job.write(&handle, &mut sink, &|_| {}).map(|n| (n, sink.0))
    })
    .await?
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let bulk_secs = started.elapsed().as_secs_f64();
    let bulk_rate = written as f64 / bulk_secs;
    store.close().await;
    let rss = peak_rss_mb();
    let _ = std::fs::remove_dir_all(&dir);
    anyhow::ensure!(written == count, "{written} of {count} notices written");
    println!("bench notices (one core, Titillium Web embedded, vector QR/DataMatrix)");
    println!(
        "  {:<44} {:>8} {:>10} {:>12}",
        "case", "notices", "seconds", "per second"
    );
    println!(
        "  {:<44} {:>8} {:>10.2} {:>12.0}",
        "single (QR + Poste DataMatrix)", singles, single_secs, single_rate
    );
    println!(
        "  {:<44} {:>8} {:>10.2} {:>12.0}",
        "single, packed quick (a download)", singles, quick_secs, quick_rate
    );
    println!(
        "  {:<44} {:>8} {:>10.2} {:>12.0}",
        "bulk ZIP of a supply (streamed, from SQLite)", written, bulk_secs, bulk_rate
    );
    println!(
        "  {:<44} {:>8} {:>10} {:>12.0}",
        "A4 page with one line of text (floor)", singles, "", baseline
    );
    println!(
        "  average notice {} KiB ({} KiB packed quick); ZIP {} MiB; peak RSS {rss:.0} MiB (before the ZIP {rss_before:.0})",
        bytes as u64 / singles / 1024,
        quick_bytes as u64 / singles / 1024,
        zip_bytes / (1024 * 1024)
    );
    println!(
        "{}",
        json!({
            "bench": "notices",
            "items": written,
            "seconds": round2(bulk_secs),
            "per_s": bulk_rate.round(),
            "single_per_s": single_rate.round(),
            "single_quick_per_s": quick_rate.round(),
            "peak_rss_mb": rss.round(),
            "baseline_per_s": baseline.round(),
            "ratio": ((bulk_rate / baseline) * 1000.0).round() / 1000.0,
        })
    );
    Ok(())
}

/// Writes an `incasso-csv` supply and a `legacy-fixed` one of `rows` rows.
fn generate_supplies(
    dir: &std::path::Path,
    rows: u64,
) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    use std::io::Write;
    let csv_path = dir.join("supply.csv");
    let fixed_path = dir.join("supply.txt");
    let mut csv = std::io::BufWriter::new(std::fs::File::create(&csv_path)?);
    let mut fixed = std::io::BufWriter::new(std::fs::File::create(&fixed_path)?);
    writeln!(
        csv,
        "codice;servizio;codice_fiscale;nominativo;rata;importo;causale;scadenza;iuv;accertamento;operazione"
    )?;
    for i in 0..rows {
        let cf = sample::personal_fiscal_code(i);
        let cents = 1_000 + (i % 90_000) as i64;
        writeln!(
            csv,
            "C-{i:08};TARI;{cf};Contribuente {i};0;{};TARI 2027 avviso {i};31/12/2027;;2026/ACC-TARI;",
            Cents(cents).to_italian()
        )?;
        let name = format!("Contribuente Dell'Ànno {i}");
        let causale = format!("TARI 2027 avviso {i}");
        let line = format!(
            "{:<12}{cf:<16}{name:<40}{causale:<50}{cents:011}20271231{:<10}{:<18}\r\n",
            format!("F-{i:08}"),
            "TARI",
            ""
        );
        // Legacy applications write Windows-1252, not UTF-8.
        fixed.write_all(&encoding_rs::WINDOWS_1252.encode(&line).0)?;
    }
    csv.flush()?;
    fixed.flush()?;
    Ok((csv_path, fixed_path))
}

async fn load(rows: u64, database_url: Option<String>) -> Result<()> {
    let dir = tempdir()?;
    let (csv_path, fixed_path) = generate_supplies(&dir, rows)?;
    let mut results = Vec::new();
    for (n, (path, layout_name)) in [(&csv_path, "incasso-csv"), (&fixed_path, "legacy-fixed")]
        .into_iter()
        .enumerate()
    {
        // On SQLite each supply goes into a database of its own, as the
        // raw baseline's rows do: the same work measured the same way.
        // The two supplies' positions differ (C- and F- iupds), so one
        // PostgreSQL database takes both.
        let db_url = database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                dir.join(format!("{layout_name}.db")).display()
            )
        });
        let store = Store::connect(&db_url).await?;
        if database_url.is_none() || n == 0 {
            prepare(&store).await?;
            put_tari(&store).await?;
        }
        let layout = incasso_bus::builtin::get(layout_name)
            .expect("built-in")
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let p = path.clone();
        let open = move || -> std::io::Result<Box<dyn std::io::Read + Send>> {
            Ok(Box::new(std::fs::File::open(&p)?))
        };
        let mut sink = std::io::sink();
        let started = Instant::now();
        let file = incasso_app::supply::SupplyFile {
            ente: ENTE,
            layout: &layout,
            default_service: None,
            file_name: layout_name,
            open: &open,
        };
        let sinks = incasso_app::supply::Sinks {
            outcome: Some(&mut sink),
            ..incasso_app::supply::Sinks::none()
        };
        let report = incasso_app::supply::load(&store, &file, sinks)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let secs = started.elapsed().as_secs_f64();
        anyhow::ensure!(
            report.accepted && report.rows_loaded as u64 == rows,
            "{layout_name}: {} of {rows} rows loaded ({:?})",
            report.rows_loaded,
            report.errors.first()
        );
        results.push((layout_name, secs, rows as f64 / secs));
        store.close().await;
    }
    let rss = peak_rss_mb();
    let baseline = raw_sqlite(&dir, rows).await?;
    let (_, csv_secs, csv_rate) = results[0];
    let (_, fixed_secs, fixed_rate) = results[1];
    let ratio = csv_rate / baseline;
    let backend = match &database_url {
        Some(url) if url.starts_with("postgres") => "postgres",
        _ => "sqlite",
    };
    if database_url.is_none() {
        println!("bench load (sqlite, a fresh database per supply, IUVs assigned by incasso)");
    } else {
        println!(
            "bench load ({backend}, both supplies into one database, IUVs assigned by incasso)"
        );
    }
    println!(
        "  {:<40} {:>10} {:>10} {:>12}",
        "supply", "rows", "seconds", "rows/second"
    );
    println!(
        "  {:<40} {:>10} {:>10.2} {:>12.0}",
        "incasso-csv (UTF-8, ';')", rows, csv_secs, csv_rate
    );
    println!(
        "  {:<40} {:>10} {:>10.2} {:>12.0}",
        "legacy-fixed (Windows-1252)", rows, fixed_secs, fixed_rate
    );
    println!(
        "  {:<40} {:>10} {:>10} {:>12.0}",
        "raw SQLite, same rows (1 tx, prepared)", rows, "", baseline
    );
    println!("  ratio csv/raw {ratio:.3}; peak RSS {rss:.0} MiB");
    println!(
        "{}",
        json!({
            "bench": "load",
            "backend": backend,
            "items": rows,
            "seconds": round2(csv_secs),
            "per_s": csv_rate.round(),
            "fixed_seconds": round2(fixed_secs),
            "fixed_per_s": fixed_rate.round(),
            "peak_rss_mb": rss.round(),
            "baseline_per_s": baseline.round(),
            "ratio": (ratio * 1000.0).round() / 1000.0,
        })
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
