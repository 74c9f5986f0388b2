//! `incasso bench digitpos`: other applications' portals paying through
//! DigitPOS at once. Each client does use case 1 end to end, as an
//! external portal and its payer would: the spontaneous payment created
//! (`POST .../digitpos/spontaneous-payments` with the demo's DigitPOS key
//! and an idempotency key of its own), the payer paying on the simulated
//! Checkout (which pays through the simulated Node: paVerify,
//! paGetPayment and paSendRT to incasso), and the receipt read back
//! (`GET .../receipt`). A payment counts as complete once its receipt
//! answers 200.
//!
//! incasso and the simulator run in this process, on the demo's seed.
//! Figures: complete payments a second, p50/p99 of the create call and of
//! the whole payment, peak RSS; SQLite by default, PostgreSQL with
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
}

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
    let backend = if db_url.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    let store = Store::connect(&db_url)
        .await
        .context("opening the bench database")?;

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
    let secs = started.elapsed().as_secs_f64();
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
        // Webhooks: once the Ente's webhook for this portal is registered
        // (helper A2's `/api/v1/enti/{fc}/webhooks`), the portal learns of
        // the payment from the PAID delivery instead: wait for it here
        // (the simulator's webhook receiver lists what it got) and count
        // the payment complete only then.
        Ok(Sample {
            create_ms,
            total_ms: began.elapsed().as_secs_f64() * 1000.0,
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
