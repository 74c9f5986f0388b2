//! `incasso bench digitpos`: other applications' portals paying through
//! DigitPOS at once. Each client does use case 1 end to end, as an
//! external portal and its payer would: the spontaneous payment created
//! (`POST .../digitpos/spontaneous-payments` with the demo's DigitPOS key
//! and an idempotency key of its own), the payer paying on the simulated
//! Checkout (which pays through the simulated Node: paVerify,
//! paGetPayment and paSendRT to incasso), and the receipt read back
//! (`GET .../receipt`), then told by incasso's PAID webhook at the demo's
//! receiver in the simulator. A payment counts as complete once both are
//! in; the clients do not wait for the webhook (a portal does not hold its
//! payer for it), so the run ends with the last PAID delivery.
//!
//! incasso and the simulator run in this process, on the demo's seed.
//! Figures: complete payments a second, p50/p99 of the create call, of
//! the whole payment to its receipt and of the webhook after it, peak RSS; SQLite by default, PostgreSQL with
//! `--database-url`.

use crate::bench::{peak_rss_mb, round2, tempdir};
use anyhow::{Context, Result, bail, ensure};
use incasso_app::App;
use incasso_store::Store;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The demo service paid: the Comune's *Diritti di segreteria*, a form
/// with a choice and a patterned field, and a table of amounts.
const SERVICE: &str = "DIRITTI-SEG";
const PAYER: &str = "RSSMRA85T10A562S";

pub struct Args {
    /// External portals' clients paying at once.
    pub concurrency: u64,
    /// Payments in all.
    pub payments: u64,
    pub database_url: Option<String>,
}

/// What one payment measured.
struct Sample {
    create_ms: f64,
    total_ms: f64,
    iupd: String,
    /// When the portal read the receipt.
    receipt_at: chrono::DateTime<chrono::Utc>,
}

/// The demo's webhook receiver in the simulator, registered for the first
/// Ente by `serve --demo`'s seed.
const RECEIVER: &str = "demo";

/// How long the PAID webhooks of the run may take after its last receipt.
const WEBHOOK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(120);

pub async fn run(args: Args) -> Result<()> {
    let Args {
        concurrency,
        payments,
        database_url,
    } = args;
    let concurrency = concurrency.max(1);
    let dir = tempdir()?;
    let db_url =
        database_url.unwrap_or_else(|| format!("sqlite://{}", dir.join("digitpos.db").display()));
    let store = Store::connect(&db_url)
        .await
        .context("opening the bench database")?;
    let backend = store.dialect().name();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sim_url = format!("http://{}", sim_listener.local_addr()?);
    let app = App::new(store.clone(), incasso_app::Settings::new(&base));
    let demo_json = incasso_app::demo::seed(&app.system("bench"), &dir, &sim_url)
        .await
        .context("seeding the demo Enti")?;
    let demo: Value = serde_json::from_str(&std::fs::read_to_string(&demo_json)?)?;
    let first = &demo["enti"][0];
    let ente = first["fiscal_code"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let key = first["digitpos_api_key"]
        .as_str()
        .filter(|k| !k.is_empty())
        .context("demo.json has no digitpos_api_key")?
        .to_string();
    let host = first["digitpos_return_host"]
        .as_str()
        .unwrap_or("localhost")
        .to_string();

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let (mut sim_settings, _) =
        crate::simulator::settings_from_demo(&demo_json, Some(base.clone()))?;
    sim_settings.public_url = Some(sim_url.clone());
    let sim = incasso_simulator::Simulator::new(sim_settings);
    // The portal's webhook receiver: told of each payment (PAID) by
    // incasso's webhooks, signed with the secret the seed registered.
    sim.webhooks_from_demo(&demo);
    let webhooks = demo["webhook_receivers"]
        .as_array()
        .is_some_and(|r| r.iter().any(|r| r["name"] == RECEIVER));
    let receiver = sim.clone();
    let simulator = tokio::spawn(sim.serve(sim_listener, stopped(stop_rx.clone())));
    let server = tokio::spawn(incasso_server::serve_state(
        listener,
        incasso_server::AppState::new(app),
        stopped(stop_rx.clone()),
    ));

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(2 * concurrency as usize)
        .build()?;
    let portal = Arc::new(Portal {
        client,
        base,
        ente,
        key,
        back: format!("http://{host}:9/esito"),
        run: format!("{}", chrono::Utc::now().timestamp_millis()),
    });
    // One payment first, not measured: the caches a client finds warm.
    portal.pay(u64::MAX).await.context("the first payment")?;

    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let started_at = chrono::Utc::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (portal, next) = (portal.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= payments {
                    return Ok::<_, anyhow::Error>(samples);
                }
                samples.push(
                    portal
                        .pay(i)
                        .await
                        .with_context(|| format!("payment {i}"))?,
                );
            }
        }));
    }
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await??);
    }
    let mut secs = started.elapsed().as_secs_f64();
    // A payment is complete once the portal is told by webhook too: the
    // portal does not hold its payer for it, so the clients go on, and
    // the run ends with the last PAID delivery.
    let mut lags: Vec<f64> = Vec::new();
    if webhooks {
        let waiting: std::collections::HashMap<&str, chrono::DateTime<chrono::Utc>> = samples
            .iter()
            .map(|s| (s.iupd.as_str(), s.receipt_at))
            .collect();
        let deadline = Instant::now() + WEBHOOK_PATIENCE;
        loop {
            let report = receiver.webhook_report(RECEIVER);
            let mut first: std::collections::HashMap<&str, chrono::DateTime<chrono::Utc>> =
                std::collections::HashMap::new();
            for d in report.deliveries.iter().filter(|d| d.kind == "PAID") {
                if let Some((iupd, _)) = waiting.get_key_value(d.iupd.as_str()) {
                    first.entry(iupd).or_insert(d.received_at);
                }
            }
            if first.len() == waiting.len() {
                lags = first
                    .iter()
                    .map(|(iupd, at)| {
                        (*at - waiting[iupd]).num_microseconds().unwrap_or(0) as f64 / 1000.0
                    })
                    .collect();
                let last = first.values().max().copied().unwrap_or(started_at);
                secs = secs.max((last - started_at).num_microseconds().unwrap_or(0) as f64 / 1e6);
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "{} of {} PAID webhooks arrived",
                first.len(),
                waiting.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    let _ = stop_tx.send(true);
    server.await??;
    simulator.await??;
    store.close().await;

    ensure!(samples.len() as u64 == payments, "payments missing");
    let mut create: Vec<f64> = samples.iter().map(|s| s.create_ms).collect();
    let mut total: Vec<f64> = samples.iter().map(|s| s.total_ms).collect();
    create.sort_by(|a, b| a.total_cmp(b));
    total.sort_by(|a, b| a.total_cmp(b));
    let per_s = payments as f64 / secs;
    let (p50, p99) = (percentile(&create, 50.0), percentile(&create, 99.0));
    let (t50, t99) = (percentile(&total, 50.0), percentile(&total, 99.0));
    let rss = peak_rss_mb();
    println!(
        "bench digitpos ({backend}; {concurrency} external portals at once, {payments} payments)"
    );
    println!(
        "  {:<34} {:>9} {:>9} {:>9}",
        "", "p50 ms", "p99 ms", "max ms"
    );
    println!(
        "  {:<34} {:>9.2} {:>9.2} {:>9.2}",
        "create (position + Checkout cart)",
        p50,
        p99,
        create.last().copied().unwrap_or(0.0)
    );
    println!(
        "  {:<34} {:>9.2} {:>9.2} {:>9.2}",
        "whole payment (to receipt)",
        t50,
        t99,
        total.last().copied().unwrap_or(0.0)
    );
    lags.sort_by(|a, b| a.total_cmp(b));
    let (w50, w99) = (percentile(&lags, 50.0), percentile(&lags, 99.0));
    if webhooks {
        println!(
            "  {:<34} {:>9.2} {:>9.2} {:>9.2}",
            "PAID webhook after the receipt",
            w50,
            w99,
            lags.last().copied().unwrap_or(0.0)
        );
    } else {
        println!("  (no webhook receiver in demo.json: payments complete at the receipt)");
    }
    println!(
        "  {payments} complete payments in {secs:.2} s: {per_s:.0} payments/s; peak RSS {rss:.0} MiB"
    );
    println!(
        "{}",
        json!({
            "bench": "digitpos",
            "backend": backend,
            "clients": concurrency,
            "items": payments,
            "seconds": round2(secs),
            "per_s": per_s.round(),
            "p50_ms": round2(p50),
            "p99_ms": round2(p99),
            "payment_p50_ms": round2(t50),
            "payment_p99_ms": round2(t99),
            "webhooks": webhooks,
            "webhook_p50_ms": round2(w50),
            "webhook_p99_ms": round2(w99),
            "peak_rss_mb": rss.round(),
        })
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// An external portal: its DigitPOS key and its return pages.
struct Portal {
    client: reqwest::Client,
    base: String,
    ente: String,
    key: String,
    back: String,
    /// Makes this run's idempotency keys its own (a reused PostgreSQL
    /// database keeps earlier runs' keys).
    run: String,
}

impl Portal {
    fn url(&self, rest: &str) -> String {
        format!("{}/api/v1/enti/{}/digitpos/{rest}", self.base, self.ente)
    }

    /// Payment `i`, end to end.
    async fn pay(&self, i: u64) -> Result<Sample> {
        let began = Instant::now();
        let body = json!({
            "serviceCode": SERVICE,
            "debtor": {"fiscalCode": PAYER, "name": "Mario Rossi"},
            "fields": {"documento": "Certificato di residenza",
                       "pratica": format!("BE{:04}", i % 10_000)},
            "amountChoice": 0,
            "returnUrls": {"ok": format!("{}/ok", self.back),
                           "cancel": format!("{}/annullato", self.back),
                           "error": format!("{}/errore", self.back)},
        });
        let resp = self
            .client
            .post(self.url("spontaneous-payments"))
            .header("Ocp-Apim-Subscription-Key", &self.key)
            .header("Idempotency-Key", format!("bench-{}-{i}", self.run))
            .json(&body)
            .send()
            .await?;
        let status = resp.status();
        let made: Value = resp.json().await?;
        let create_ms = began.elapsed().as_secs_f64() * 1000.0;
        if status != reqwest::StatusCode::CREATED {
            bail!("create answered {status}: {made}");
        }
        let checkout = made["checkoutUrl"].as_str().context("no checkoutUrl")?;
        let nav = made["noticeNumber"].as_str().context("no noticeNumber")?;
        // The payer pays on Checkout, which sends them back to the portal.
        let paid = self.client.post(format!("{checkout}/pay")).send().await?;
        let back = paid
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .unwrap_or_default()
            .to_string();
        ensure!(
            back.starts_with(&format!("{}/ok", self.back)),
            "Checkout sent the payer to {back:?} ({})",
            paid.status()
        );
        // The portal confirms the payment from incasso's receipt, never
        // from the return URL.
        let mut tries = 0;
        loop {
            let r = self
                .client
                .get(self.url(&format!("notices/{nav}/receipt")))
                .header("Ocp-Apim-Subscription-Key", &self.key)
                .send()
                .await?;
            if r.status() == reqwest::StatusCode::OK {
                break;
            }
            tries += 1;
            ensure!(tries < 200, "no receipt for {nav}: {}", r.status());
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        // The PAID webhook is awaited by `run`, for every payment at once.
        Ok(Sample {
            create_ms,
            total_ms: began.elapsed().as_secs_f64() * 1000.0,
            iupd: made["iupd"].as_str().unwrap_or_default().to_string(),
            receipt_at: chrono::Utc::now(),
        })
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}
