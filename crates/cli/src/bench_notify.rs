//! `incasso bench notify`: a burst of positions published with automatic
//! invitations (issue 19), drained through the notification outbox: the
//! fan-out of PUBLISHED events, the worker's profile check and send to the
//! simulated App IO, and, for the citizens who opted out of IO, the e-mail
//! fallback through the simulator's SMTP server (the notice PDF attached).
//!
//! Two phases, on the demo's Comune and its TARI service:
//! - **(a) IO not the limit**: the simulated IO without a rate limit; the
//!   figure is invitations a second through the whole outbox, from the
//!   first fan-out to the last e-mail sent.
//! - **(b) IO at its rate limit** (`--rate` calls a second for the
//!   service's key, a profile check and a message each): the drain rate
//!   must be what IO allows, IO's 429s only slowing it.
//!
//! The positions are seeded before each phase through the store's bulk
//! create (the PUBLISHED events written by the same transactions, as a
//! supply's upload does), with no worker running; then the worker and the
//! e-mail worker are started and the clock runs until both outboxes are at
//! rest. At the end of each phase: every invitation SENT to IO or, for a
//! citizen who opted out, SKIPPED with its e-mail SENT; the simulator counts
//! every message once (duplicates 0) and every e-mail once.

use crate::bench::{peak_rss_mb, round2, spec, tempdir};
use anyhow::{Context, Result, ensure};
use incasso_app::App;
use incasso_simulator::io::{IoCitizen, IoSettings};
use incasso_store::Store;
use incasso_store::bench::NotifyCounts;
use incasso_store::notify::{EMAIL, FAILED, IO, SENT, SKIPPED};
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The demo Comune's service whose positions are told.
const SERVICE: &str = "TARI";

/// One citizen in this many opted out of the service's IO messages: they
/// are told by e-mail.
const EMAIL_ONE_IN: u64 = 200;

/// Positions seeded per store call (one transaction each).
const SEED_CHUNK: u64 = 1_000;

/// How long a phase may take before the bench gives up.
const PATIENCE: Duration = Duration::from_secs(1_800);

pub struct Args {
    /// Positions of phase (a), IO not the limit.
    pub positions: u64,
    /// Positions of phase (b), IO at its rate limit.
    pub limited: u64,
    /// IO calls a second allowed to the service's key in phase (b).
    pub rate: u32,
    pub database_url: Option<String>,
}

/// What one phase measured.
struct Phase {
    items: u64,
    seed_secs: f64,
    secs: f64,
    io_sent: i64,
    emailed: i64,
    io_calls: u64,
    rate_limited: u64,
    duplicates: u64,
}

pub async fn run(args: Args) -> Result<()> {
    let Args {
        positions,
        limited,
        rate,
        database_url,
    } = args;
    let dir = tempdir()?;
    let db_url =
        database_url.unwrap_or_else(|| format!("sqlite://{}", dir.join("notify.db").display()));
    let store = Store::connect(&db_url)
        .await
        .context("opening the bench database")?;
    let backend = store.dialect().name();

    // The simulator: App IO (everyone on IO, one in EMAIL_ONE_IN opted
    // out, no rate limit yet, few messages kept) and its SMTP server.
    let sim = incasso_simulator::Simulator::new(Default::default());
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sim_url = format!("http://{}", sim_listener.local_addr()?);
    let smtp_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let smtp_url = format!("smtp://{}", smtp_listener.local_addr()?);
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let simulator = tokio::spawn(sim.clone().serve(sim_listener, async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    }));
    let smtp = tokio::spawn(sim.clone().serve_smtp(smtp_listener));

    let mut settings = incasso_app::Settings::new("http://127.0.0.1:9");
    settings.io_url = Some(format!("{sim_url}/io/api/v1"));
    settings.smtp_url = Some(smtp_url);
    let app = App::new(store.clone(), settings);
    let ctx = app.system("bench");
    incasso_app::demo::seed(&ctx, &dir, &sim_url)
        .await
        .context("seeding the demo Enti")?;
    let ente = crate::bench::ENTE;
    // The demo's own events are not this bench's: the outbox starts after
    // them (nothing is told yet, no service having settings).
    incasso_app::notify::fan_out(&app).await?;
    incasso_app::notify::save_settings(
        &ctx,
        ente,
        SERVICE,
        &incasso_app::notify::SettingsInput {
            io_api_key: Some(incasso_app::notify::demo_io_key(ente)),
            enabled: true,
            invite_on_publish: true,
            reminder_days: None,
            german: false,
        },
    )
    .await?;
    let run_id = format!("N{}", chrono::Utc::now().timestamp_millis());

    let io_settings = |rate_per_second: u32, upto: u64| IoSettings {
        rate_per_second,
        known_one_in: 1,
        keep_messages: 1_000,
        citizens: (0..upto)
            .filter(|i| i % EMAIL_ONE_IN == 0)
            .map(|i| {
                (
                    incasso_core::sample::personal_fiscal_code(i),
                    IoCitizen {
                        sender_allowed: false,
                        preferred_languages: vec!["it_IT".into()],
                    },
                )
            })
            .collect(),
        ..IoSettings::default()
    };

    // (a) IO not the limit.
    sim.io().configure(io_settings(0, positions + limited));
    let a = phase(&app, &sim, 0..positions, &format!("{run_id}-A")).await?;
    // (b) IO at its rate limit.
    sim.io().configure(io_settings(rate, positions + limited));
    let b = phase(
        &app,
        &sim,
        positions..positions + limited,
        &format!("{run_id}-B"),
    )
    .await?;

    let _ = stop_tx.send(true);
    simulator.await??;
    smtp.abort();
    store.close().await;
    let rss = peak_rss_mb();

    let per_s = a.items as f64 / a.secs;
    let b_per_s = b.items as f64 / b.secs;
    // Each message costs IO two calls: the profile check and the send.
    let allowed = f64::from(rate) / 2.0;
    println!(
        "bench notify ({backend}; {} + {} positions published with invitations, one citizen in {EMAIL_ONE_IN} by e-mail)",
        a.items, b.items
    );
    println!(
        "  {:<40} {:>8} {:>8} {:>8} {:>9} {:>9} {:>6} {:>6}",
        "", "items", "seed s", "drain s", "events/s", "IO calls", "429s", "dups"
    );
    for (name, p) in [
        ("(a) IO not the limit", &a),
        ("(b) IO at its rate limit", &b),
    ] {
        println!(
            "  {:<40} {:>8} {:>8.2} {:>8.2} {:>9.0} {:>9} {:>6} {:>6}",
            name,
            p.items,
            p.seed_secs,
            p.secs,
            p.items as f64 / p.secs,
            p.io_calls,
            p.rate_limited,
            p.duplicates
        );
        println!(
            "  {:<40} {} to App IO, {} by e-mail",
            "", p.io_sent, p.emailed
        );
    }
    println!(
        "  (b): IO allows {rate} calls/s = {allowed:.0} messages/s; drained {b_per_s:.0}/s ({:.0}% of it)",
        100.0 * b_per_s / allowed.max(1.0)
    );
    println!("  peak RSS {rss:.0} MiB");
    println!(
        "{}",
        json!({
            "bench": "notify",
            "backend": backend,
            "items": a.items,
            "seconds": round2(a.secs),
            "per_s": per_s.round(),
            "io_sent": a.io_sent,
            "emailed": a.emailed,
            "seed_seconds": round2(a.seed_secs),
            "duplicates": a.duplicates + b.duplicates,
            "limited_items": b.items,
            "limited_seconds": round2(b.secs),
            "limited_per_s": b_per_s.round(),
            "limited_rate_calls_per_s": rate,
            "limited_allowed_per_s": allowed.round(),
            "limited_ratio": round2(b_per_s / allowed.max(1.0)),
            "limited_429": b.rate_limited,
            "peak_rss_mb": rss.round(),
        })
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Seeds `range`'s positions, then drains the outbox and checks that each
/// was told once, on its citizen's channel.
async fn phase(
    app: &App,
    sim: &incasso_simulator::Simulator,
    range: std::ops::Range<u64>,
    prefix: &str,
) -> Result<Phase> {
    let store = &app.store;
    let ente = crate::bench::ENTE;
    let items = range.end - range.start;
    let before = store.outbox_progress().await?;
    let io_before = sim.io().stats();
    // The e-mails are read as they come and not kept (their PDFs would
    // fill memory): their recipients, each counted.
    sim.clear_mail();
    let mut mailed: HashMap<Vec<String>, u64> = HashMap::new();

    let started = Instant::now();
    let mut i = range.start;
    while i < range.end {
        let upto = (i + SEED_CHUNK).min(range.end);
        let chunk = (i..upto).map(|k| spec(k, prefix)).collect();
        store
            .create_positions(ente, chunk, chrono::Utc::now(), true, None)
            .await
            .with_context(|| format!("seeding positions {i}..{upto}"))?;
        i = upto;
    }
    let seed_secs = started.elapsed().as_secs_f64();
    let emailed_expected = range.clone().filter(|k| k % EMAIL_ONE_IN == 0).count() as i64;

    let started = Instant::now();
    let workers = [
        tokio::spawn(incasso_app::notify::run(app.clone())),
        tokio::spawn(incasso_app::mail::run(app.clone())),
    ];
    let deadline = Instant::now() + PATIENCE;
    let after = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        for m in sim.take_mail() {
            *mailed.entry(m.to).or_default() += 1;
        }
        // Counted only once nothing waits: a count of every row ten times
        // a second took a share of the cores from the workers measured.
        if store.outbox_busy().await? && Instant::now() < deadline {
            continue;
        }
        let now = store.outbox_progress().await?;
        let told = delta(&now, &before, IO, SENT) + delta(&now, &before, IO, SKIPPED);
        if told >= items as i64 && now.unsettled() == 0 {
            break now;
        }
        ensure!(
            Instant::now() < deadline,
            "the outbox did not drain: {told} of {items} told; {now:?}"
        );
    };
    let secs = started.elapsed().as_secs_f64();
    for w in workers {
        w.abort();
    }

    let io_sent = delta(&after, &before, IO, SENT);
    let skipped = delta(&after, &before, IO, SKIPPED);
    let emails = delta(&after, &before, EMAIL, SENT);
    let mail_sent =
        after.mail_of(incasso_store::mail::SENT) - before.mail_of(incasso_store::mail::SENT);
    ensure!(
        delta(&after, &before, IO, FAILED) == 0 && after.mail_of(incasso_store::mail::FAILED) == 0,
        "messages failed: {after:?}"
    );
    ensure!(
        io_sent + skipped == items as i64,
        "{items} positions, {io_sent} sent to IO and {skipped} skipped"
    );
    ensure!(
        skipped == emailed_expected && emails == emailed_expected && mail_sent == emailed_expected,
        "{emailed_expected} citizens opted out: {skipped} skipped, {emails} e-mail rows, {mail_sent} e-mails sent"
    );
    let io = sim.io().stats();
    let taken = io.messages - io_before.messages;
    let duplicates = io.duplicates - io_before.duplicates;
    ensure!(
        taken == io_sent as u64,
        "IO took {taken} messages, incasso recorded {io_sent} sent"
    );
    ensure!(duplicates == 0, "IO counted {duplicates} duplicates");
    for m in sim.take_mail() {
        *mailed.entry(m.to).or_default() += 1;
    }
    let received: u64 = mailed.values().sum();
    ensure!(
        received as i64 == emailed_expected && mailed.len() as u64 == received,
        "{received} e-mails received for {emailed_expected} citizens ({} distinct recipients)",
        mailed.len()
    );
    Ok(Phase {
        items,
        seed_secs,
        secs,
        io_sent,
        emailed: emails,
        io_calls: (io.profiles - io_before.profiles) + taken,
        rate_limited: io.rate_limited - io_before.rate_limited,
        duplicates,
    })
}

fn delta(now: &NotifyCounts, before: &NotifyCounts, channel: &str, status: &str) -> i64 {
    now.of(channel, status) - before.of(channel, status)
}
