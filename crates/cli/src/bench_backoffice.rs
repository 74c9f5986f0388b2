//! `incasso bench backoffice`: signed-in clerks browsing the back office's
//! main pages and searches over a store of many positions (a million by
//! default, the target).
//!
//! Two phases over the same pages: one clerk at a time (the latency a
//! person sees, whose p95 per page is the 100 ms target), then
//! several at once (pages per second the machine serves). The database is
//! seeded once: a `--database-url` that already holds the positions is
//! reused as it is, so PostgreSQL runs need not wait for the seed again.

use crate::bench::{ENTE, peak_rss_mb, prepare, round2, spec, tempdir};
use anyhow::{Context, Result, ensure};
use chrono::Utc;
use incasso_app::operators::{self, NewOperatorInput};
use incasso_app::{App, Caller, Settings};
use incasso_core::access::{Rights, Role};
use incasso_store::Store;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

const USER: &str = "bench.backoffice";
const FIRST_PASSWORD: &str = "Provvisoria-Bench-2026";
const PASSWORD: &str = "Bench-Backoffice-2026!";
/// Positions per store call while seeding.
const SEED_BATCH: usize = 500;

pub async fn run(
    positions: u64,
    clients: u64,
    rounds: u64,
    database_url: Option<String>,
) -> Result<()> {
    let dir = tempdir()?;
    let db_url =
        database_url.unwrap_or_else(|| format!("sqlite://{}", dir.join("backoffice.db").display()));
    let store = Store::connect(&db_url)
        .await
        .context("opening the bench database")?;
    let backend = store.dialect().name();
    prepare(&store).await?;
    let seeded = Instant::now();
    let present = seed(&store, positions).await?;
    let seed_secs = seeded.elapsed().as_secs_f64();
    sign_up(&store).await?;

    let server = crate::bench::InProcessServer::start(&store).await?;
    let base = server.base.clone();
    let clerk = Arc::new(Clerk::sign_in(&base).await?);
    let pages = Arc::new(pages(positions));
    // Warm the caches a person's second visit would find warm.
    for (_, path) in pages.iter() {
        clerk.get(path).await?;
    }

    // One clerk at a time: the latency of each page.
    let mut by_page: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for _ in 0..rounds {
        for (name, path) in pages.iter() {
            let t = Instant::now();
            clerk.get(path).await?;
            by_page
                .entry(name)
                .or_default()
                .push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }

    // Several clerks at once: pages per second.
    let requests = rounds * pages.len() as u64 * clients.max(1);
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients.max(1) {
        let (clerk, pages, next) = (clerk.clone(), pages.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= requests {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let (_, path) = &pages[(i % pages.len() as u64) as usize];
                let t = Instant::now();
                clerk.get(path).await?;
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    let secs = started.elapsed().as_secs_f64();
    server.stop().await?;
    store.close().await;
    latencies.sort_by(|a, b| a.total_cmp(b));
    let rate = requests as f64 / secs;
    let (p50, p99) = (percentile(&latencies, 50.0), percentile(&latencies, 99.0));
    let rss = peak_rss_mb();

    println!("bench backoffice ({backend}, {present} positions; seeded in {seed_secs:.1} s)");
    println!(
        "  {:<34} {:>9} {:>9} {:>9}",
        "page (one clerk)", "p50 ms", "p95 ms", "max ms"
    );
    let mut worst_p95: f64 = 0.0;
    for (name, samples) in by_page.iter_mut() {
        samples.sort_by(|a, b| a.total_cmp(b));
        let p95 = percentile(samples, 95.0);
        worst_p95 = worst_p95.max(p95);
        println!(
            "  {:<34} {:>9.2} {:>9.2} {:>9.2}",
            name,
            percentile(samples, 50.0),
            p95,
            samples.last().copied().unwrap_or(0.0)
        );
    }
    println!(
        "  {clients} clerks at once: {requests} pages in {secs:.2} s, {rate:.0} pages/s, p50 {p50:.2} ms, p99 {p99:.2} ms; peak RSS {rss:.0} MiB"
    );
    println!(
        "{}",
        json!({
            "bench": "backoffice",
            "backend": backend,
            "positions": present,
            "items": requests,
            "seconds": round2(secs),
            "per_s": rate.round(),
            "p50_ms": round2(p50),
            "p99_ms": round2(p99),
            "worst_page_p95_ms": round2(worst_p95),
            "peak_rss_mb": rss.round(),
        })
    );
    let _ = std::fs::remove_dir_all(&dir);
    ensure!(
        present >= positions,
        "only {present} of {positions} positions in the store"
    );
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// The pages a clerk opens, by name: lists, each kind of search, a detail.
/// Positions `BO-*` are the seed's; `n` tells which exist.
fn pages(n: u64) -> Vec<(&'static str, String)> {
    let some = n / 2;
    let iupd = format!("BO-{some:08}");
    let debtor = incasso_core::sample::personal_fiscal_code(some);
    vec![
        ("dashboard", "/backoffice/".to_string()),
        (
            // The year the seed's positions fall due in: all of them.
            "dashboard, the seed's year",
            format!(
                "/backoffice/?anno={}",
                (Utc::now() + chrono::Duration::days(60)).format("%Y")
            ),
        ),
        ("positions, first page", "/backoffice/posizioni".to_string()),
        (
            "positions by debtor fiscal code",
            format!("/backoffice/posizioni?debitore={debtor}"),
        ),
        (
            "positions by debtor name",
            format!("/backoffice/posizioni?debitore=Contribuente%20Esempio%20{some}"),
        ),
        ("positions due in a month", {
            // The seed's positions fall due 60 days after their seeding.
            let from = (Utc::now() + chrono::Duration::days(45)).format("%Y-%m-%d");
            let to = (Utc::now() + chrono::Duration::days(75)).format("%Y-%m-%d");
            format!("/backoffice/posizioni?scadenza_dal={from}&scadenza_al={to}")
        }),
        (
            "positions by iupd",
            format!("/backoffice/posizioni?iupd={iupd}"),
        ),
        (
            "positions by status, due desc",
            "/backoffice/posizioni?stato=VALID&ordina=scadenza&verso=desc".to_string(),
        ),
        ("position detail", format!("/backoffice/posizioni/{iupd}")),
        ("supplies", "/backoffice/forniture".to_string()),
        ("receipts", "/backoffice/ricevute".to_string()),
        ("reporting flows", "/backoffice/flussi".to_string()),
        ("treasury", "/backoffice/tesoreria".to_string()),
        ("accertamenti", "/backoffice/accertamenti".to_string()),
        ("audit log", "/backoffice/giornale".to_string()),
    ]
}

/// Fills the store up to `n` bench positions through the store's own
/// batch writes (so every column and index is as incasso writes it);
/// returns how many there are.
async fn seed(store: &Store, n: u64) -> Result<u64> {
    let present = count(store).await?;
    if present >= n {
        return Ok(present);
    }
    let next = Arc::new(std::sync::atomic::AtomicU64::new(present));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (store, next) = (store.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let from = next.fetch_add(SEED_BATCH as u64, std::sync::atomic::Ordering::Relaxed);
                if from >= n {
                    return Ok::<_, anyhow::Error>(());
                }
                let to = (from + SEED_BATCH as u64).min(n);
                let batch = (from..to).map(|i| spec(i, "BO")).collect();
                store
                    .create_positions(ENTE, batch, Utc::now(), true, None)
                    .await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    count(store).await
}

/// The Ente's positions in the store.
async fn count(store: &Store) -> Result<u64> {
    let filter = incasso_store::ListFilter {
        limit: 1,
        ..Default::default()
    };
    Ok(store.list_positions(ENTE, &filter).await?.items_found)
}

/// The bench's clerk: an Ente administrator, created once.
async fn sign_up(store: &Store) -> Result<()> {
    if store.operator_by_username(USER).await?.is_some() {
        return Ok(());
    }
    let app = App::new(store.clone(), Settings::new("http://127.0.0.1"));
    operators::create(
        &app.ctx(Caller::System("bench")),
        NewOperatorInput {
            username: USER.into(),
            full_name: "Bench Back Office".into(),
            fiscal_code: None,
            email: None,
            rights: Rights {
                role: Role::EnteAdmin,
                ente: Some(ENTE.into()),
                grants: vec![],
                offices: vec![],
            },
            password: Some(FIRST_PASSWORD.into()),
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}", e.detail))?;
    Ok(())
}

/// A signed-in browser.
struct Clerk {
    base: String,
    client: reqwest::Client,
    cookie: String,
}

impl Clerk {
    /// Signs in through the form, as a person does (the first time also
    /// replacing the provisional password).
    async fn sign_in(base: &str) -> Result<Clerk> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(64)
            .build()?;
        for password in [PASSWORD, FIRST_PASSWORD] {
            let resp = client
                .get(format!("{base}/backoffice/login"))
                .send()
                .await?;
            let form_cookie = set_cookie(&resp, "incasso_form").context("no form cookie")?;
            let csrf = csrf_of(&resp.text().await?).context("no CSRF field")?;
            let resp = client
                .post(format!("{base}/backoffice/login"))
                .header("cookie", format!("incasso_form={form_cookie}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(&[
                    ("username", USER),
                    ("password", password),
                    ("csrf", &csrf),
                ]))
                .send()
                .await?;
            let Some(session) = set_cookie(&resp, "incasso_session") else {
                continue;
            };
            let clerk = Clerk {
                base: base.to_string(),
                client: client.clone(),
                cookie: format!("incasso_session={session}"),
            };
            if password == FIRST_PASSWORD {
                let page = clerk.fetch("/backoffice/password").await?;
                let csrf = csrf_of(&page).context("no CSRF field")?;
                let resp = clerk
                    .client
                    .post(format!("{base}/backoffice/password"))
                    .header("cookie", &clerk.cookie)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form(&[
                        ("current_password", FIRST_PASSWORD),
                        ("new_password", PASSWORD),
                        ("confirm_password", PASSWORD),
                        ("csrf", &csrf),
                    ]))
                    .send()
                    .await?;
                ensure!(resp.status().is_redirection(), "password change refused");
            }
            return Ok(clerk);
        }
        anyhow::bail!("the bench's clerk could not sign in")
    }

    async fn fetch(&self, path: &str) -> Result<String> {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await?;
        ensure!(
            resp.status().is_success(),
            "{path}: {} (the page must answer 200)",
            resp.status()
        );
        Ok(resp.text().await?)
    }

    async fn get(&self, path: &str) -> Result<()> {
        self.fetch(path).await.map(|_| ())
    }
}

fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            c.split(';')
                .next()?
                .strip_prefix(&format!("{name}="))
                .map(str::to_string)
        })
}

fn csrf_of(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")? + 19;
    Some(html[at..at + html[at..].find('"')?].to_string())
}

/// `fields` as `application/x-www-form-urlencoded`.
fn form(fields: &[(&str, &str)]) -> String {
    let enc = |v: &str| -> String {
        v.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}
